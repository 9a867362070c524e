#!/usr/bin/env node
// Probe an ONVIF device with the npm `onvif` client (an implementation independent of jifang's Python code) and
// print what it learnt as one JSON object. Used by tests/test_onvif_client.py to check that jifang's ONVIF
// simulator speaks ONVIF that a third-party client understands.
//
// Usage: ONVIF_PASSWORD=... node probe.js HOST PORT USER
// The password comes from the environment so it never shows in a process list.
'use strict';

const { Cam } = require('onvif');

const [host, port, username] = process.argv.slice(2);
if (!host || !port) {
  process.stderr.write('usage: ONVIF_PASSWORD=... node probe.js HOST PORT [USER]\n');
  process.exit(2);
}

function fail(stage, err) {
  process.stdout.write(JSON.stringify({ ok: false, stage, error: String((err && err.message) || err) }) + '\n');
  process.exit(1);
}

function call(cam, method, ...args) {
  return new Promise((resolve, reject) => {
    cam[method](...args, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

const cam = new Cam(
  {
    hostname: host,
    port: Number(port),
    username: username || undefined,
    password: process.env.ONVIF_PASSWORD || undefined,
    timeout: 5000,
    // Use the address we were given for every service, as jifang's probe does.
    preserveAddress: true,
  },
  async (err) => {
    if (err) fail('connect', err);
    try {
      // connect() already ran GetSystemDateAndTime (unauthenticated) and applies the camera clock to its
      // UsernameToken; ask once more to report the offset.
      const cameraTime = await call(cam, 'getSystemDateAndTime');
      const info = await call(cam, 'getDeviceInformation');
      const profiles = (cam.profiles || []).map((p) => ({
        token: p.$ && p.$.token,
        name: p.name,
        encoding: p.videoEncoderConfiguration && p.videoEncoderConfiguration.encoding,
        width: p.videoEncoderConfiguration && p.videoEncoderConfiguration.resolution.width,
        height: p.videoEncoderConfiguration && p.videoEncoderConfiguration.resolution.height,
      }));
      const stream = await call(cam, 'getStreamUri', { protocol: 'RTSP' });
      const snapshot = await call(cam, 'getSnapshotUri', {});
      process.stdout.write(
        JSON.stringify({
          ok: true,
          manufacturer: info.manufacturer,
          model: info.model,
          firmware: String(info.firmwareVersion),
          serial: String(info.serialNumber),
          hardwareId: String(info.hardwareId),
          profiles,
          streamUri: stream.uri,
          snapshotUri: snapshot.uri,
          clockOffsetSeconds: (cameraTime.getTime() - Date.now()) / 1000,
        }) + '\n',
      );
      process.exit(0);
    } catch (e) {
      fail('query', e);
    }
  },
);
