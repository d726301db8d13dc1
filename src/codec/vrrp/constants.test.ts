import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as C from './constants.js';

test('protocol constants (RFC 5798 5.1.1, 5.1.2, 5.2; RFC 3768 5.2, 5.3)', () => {
  assert.equal(C.IPPROTO_VRRP, 112);
  assert.equal(C.VRRP_MCAST_GROUP_V4, '224.0.0.18');
  assert.equal(C.VRRP_MCAST_GROUP_V6, 'ff02::12');
  assert.equal(C.VRRP_IP_TTL, 255);
  assert.equal(C.VRRP_VERSION_2, 2);
  assert.equal(C.VRRP_VERSION_3, 3);
  assert.equal(C.VRRP_TYPE_ADVERTISEMENT, 1);
  assert.equal(C.VRRP_PRIO_OWNER, 255);
  assert.equal(C.VRRP_PRIO_STOP, 0);
  assert.equal(C.VRRP_PRIO_DEFAULT, 100);
  assert.equal(C.VRRP_V3_ADVER_INT_MAX_CS * C.VRRP_V3_ADVER_INT_UNIT_MS, 40950); // 40.95 s
  assert.equal(C.VRRP_V2_ADVER_INT_MAX_S, 255);
});

test('virtual router MAC (RFC 5798 7.3): 00-00-5E-00-01-{VRID} for IPv4, -02- for IPv6', () => {
  assert.equal(C.virtualMac(4, 51), '00:00:5e:00:01:33');
  assert.equal(C.virtualMac(6, 1), '00:00:5e:00:02:01');
  assert.equal(C.virtualMac(4, 255), '00:00:5e:00:01:ff');
});
