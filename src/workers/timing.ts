/**
 * The timing thread: the one worker thread that keeps time for the daemon on a saturated
 * machine, under SCHED_RR, on an event loop nothing else runs on. It carries two roles:
 * the master's VRRP adverts (advert-role.ts, on every node: a takeover must not wait for a
 * thread to start) and, with the state sync's liveness on, the BEATs and their detection
 * (liveness-role.ts, started when the daemon's liveness starts). One thread and one V8 heap
 * for both (issue 25: each worker thread costs about 11 MiB resident; there were two).
 *
 * Messages in: { role: 'advert', m } (advert-role.ts), { role: 'liveness', m } (a { type:
 * 'start', data } first, then liveness-role.ts's), { role: 'exit' }.
 * Out: { role, m }: each role's own.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { nameThread, realtimeThread } from '../adapters/realtime.js';
import type { TimingIn, TimingOut, TimingWorkerData } from '../ports/workers.js';
import { startAdverts } from './advert-role.js';
import { startLiveness, type LivenessRole } from './liveness-role.js';

const d = workerData as TimingWorkerData;
/** Under SCHED_RR once set up (see the end of this file). */
let realtime = false;
const post = (m: TimingOut) => parentPort?.postMessage(m);
const adverts = startAdverts((m) => post({ role: 'advert', m }), () => realtime);
let liveness: LivenessRole | undefined;

parentPort?.on('message', (x: TimingIn) => {
  if (x.role === 'advert') adverts.onMessage(x.m);
  else if (x.role === 'exit') {
    adverts.onMessage({ type: 'close' });
    liveness?.onMessage({ type: 'stop' });
    parentPort?.close();
  } else if (x.m.type === 'start') {
    // Its sockets are opened here, under SCHED_RR already: a few system calls, every module
    // it needs was loaded with this file.
    if (!liveness) liveness = startLiveness(x.m.data, (m) => post({ role: 'liveness', m }), () => realtime);
  } else {
    liveness?.onMessage(x.m);
    if (x.m.type === 'stop') liveness = undefined;
  }
});

// Under SCHED_RR (adapters/realtime.ts): in a soak with both CPUs busy the BEATs went out 59
// times a second instead of 66 without it. Only now, with everything loaded: a thread under
// SCHED_RR that does a start's work (koffi bindings, the first compiles) takes a CPU from
// every ordinary process for that long, on a machine of two.
realtime = realtimeThread(d.realtimePriority);
nameThread('fwlb-timing');
