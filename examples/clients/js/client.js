// MQTT.js client of the quickstart: subscribe to active users, create one,
// print the answers and the notification, then disconnect.
// Run: node examples/clients/js/client.js   (MQTT_URL, default mqtt://localhost:1883)
const mqtt = require('mqtt');

const clientId = 'web-1';
// Request ids are unique per run: the server answers a write it has seen
// with the same id and payload (within 5 minutes) from its first answer.
const run = Math.random().toString(36).slice(2, 8);
const id = (name) => `${name}:${run}`;
const client = mqtt.connect(process.env.MQTT_URL || 'mqtt://localhost:1883', {
  clientId,
  username: 'web-user', // a token in the username, as the reference README does
  password: '',         // an empty password is accepted
});
const request = (msg) => client.publish(`spec/${clientId}/request`, JSON.stringify(msg), { qos: 1 });

client.on('connect', async () => {
  await client.subscribeAsync([`spec/${clientId}/response`, `spec/${clientId}/notify/+`], { qos: 1 });
  request({
    id: id('sub-1'), type: 'subscription', operation: 'subscribe', schema: 'public', entity: 'users',
    options: { filters: [{ column: 'status', operator: 'eq', value: 'active' }] },
  });
});

client.on('message', (topic, payload) => {
  const msg = JSON.parse(payload.toString());
  if (msg.type === 'notification') {
    console.log('notification', msg.operation, msg.data.name, 'seq', msg.seq);
    return;
  }
  const name = msg.id.split(':')[0];
  console.log('response', name, msg.success, msg.error ? msg.error.code : '');
  if (name === 'sub-1') {
    request({
      id: id('create-1'), type: 'request', operation: 'create', schema: 'public', entity: 'users',
      data: { name: 'Grace', email: 'grace@example.com', status: 'active' },
    });
  } else if (name === 'create-1') {
    client.end();
  }
});

client.on('error', (err) => {
  console.error('error', err.message);
  process.exit(1);
});
