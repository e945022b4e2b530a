// pcaps/tools/bacnet-loopback.js: a real BACnet/IP exchange on loopback, made with the npm package
// node-bacnet (installed by pcaps/make-loopback.sh into build/npm, never committed).
//   node bacnet-loopback.js device   a device on 127.0.0.3:47808 that answers Who-Is, ReadProperty,
//                                    WriteProperty, SubscribeCOV, DeviceCommunicationControl, and
//                                    rejects what it does not implement with an Error PDU
//   node bacnet-loopback.js client   a workstation on 127.0.0.2:47809 that sends them, then exits
// node-bacnet ignores requests from 127.0.0.1, hence the other loopback addresses.
'use strict';
const Bacnet = require('node-bacnet');
const E = Bacnet.enum;
const role = process.argv[2];
const DEVICE = '127.0.0.3';
const DEVICE_ID = 1201;

if (role === 'device') {
  const dev = new Bacnet({ port: 47808, interface: DEVICE, broadcastAddress: '127.255.255.255' });
  dev.on('listening', () => console.log('device listening'));
  dev.on('whoIs', (m) => dev.iAmResponse(m.header.sender, DEVICE_ID, E.Segmentation.NO_SEGMENTATION, 260));
  dev.on('readProperty', (m) => {
    const p = m.payload;
    dev.readPropertyResponse(m.header.sender, m.invokeId, p.objectId, p.property,
      [{ type: E.ApplicationTag.REAL, value: 21.5 }]);
  });
  const ack = (name, svc) => dev.on(name, (m) => dev.simpleAckResponse(m.header.sender, svc, m.invokeId));
  ack('writeProperty', E.ConfirmedServiceChoice.WRITE_PROPERTY);
  ack('subscribeCov', E.ConfirmedServiceChoice.SUBSCRIBE_COV);
  ack('deviceCommunicationControl', E.ConfirmedServiceChoice.DEVICE_COMMUNICATION_CONTROL);
  process.on('SIGTERM', () => { dev.close(); process.exit(0); });
} else if (role === 'client') {
  const ws = new Bacnet({ port: 47809, interface: '127.0.0.2', broadcastAddress: '127.255.255.255', apduTimeout: 1500 });
  const dev = { address: DEVICE };
  const steps = [
    (next) => { ws.whoIs(dev, { lowLimit: DEVICE_ID, highLimit: DEVICE_ID }); setImmediate(next); },
    (next) => ws.readProperty(DEVICE, { type: E.ObjectType.ANALOG_INPUT, instance: 3 }, E.PropertyIdentifier.PRESENT_VALUE, next),
    (next) => ws.readProperty(DEVICE, { type: E.ObjectType.DEVICE, instance: DEVICE_ID }, E.PropertyIdentifier.OBJECT_NAME, next),
    (next) => ws.writeProperty(DEVICE, { type: E.ObjectType.ANALOG_VALUE, instance: 7 }, E.PropertyIdentifier.PRESENT_VALUE,
      [{ type: E.ApplicationTag.REAL, value: 22.5 }], { priority: 8 }, next),
    (next) => ws.writeProperty(DEVICE, { type: E.ObjectType.BINARY_OUTPUT, instance: 2 }, E.PropertyIdentifier.PRESENT_VALUE,
      [{ type: E.ApplicationTag.NULL, value: null }], { priority: 8 }, next),
    (next) => ws.subscribeCov(DEVICE, { type: E.ObjectType.ANALOG_INPUT, instance: 3 }, 17, false, false, 300, next),
    (next) => ws.deviceCommunicationControl(DEVICE, 5, E.EnableDisable.DISABLE_INITIATION, { password: 'secret' }, next),
    (next) => ws.reinitializeDevice(DEVICE, E.ReinitializedState.WARMSTART, { password: 'secret' }, next),
    (next) => { ws.timeSync(DEVICE, new Date(Date.UTC(2026, 0, 15, 8, 30, 0))); setImmediate(next); },
  ];
  let i = 0;
  const run = (err) => {
    if (err && i > 0)
      console.log('step', i, 'answered with', err.message);
    if (i === steps.length) {
      setTimeout(() => { ws.close(); process.exit(0); }, 100);
      return;
    }
    steps[i++](run);
  };
  ws.on('listening', () => run());
} else {
  console.error('usage: node bacnet-loopback.js device|client');
  process.exit(2);
}
