// The live view: one MQTT-over-WebSocket connection; a subscription with
// a snapshot fills the table, its notifications keep it current, and a
// gap in seq (or a reconnect) takes a fresh snapshot.
(function () {
  'use strict';
  const cfg = window.DASHBOARD;
  const clientId = 'dashboard-' + Math.random().toString(36).slice(2, 10);
  const own = `${cfg.prefix}/${clientId}/`;
  const $ = (id) => document.getElementById(id);
  const users = new Map(); // id -> record
  let subscription = null; // current subscription id
  let lastSeq = 0;
  let nextId = 0;
  const pending = new Map(); // request id -> handler of its answer

  const client = mqtt.connect(`ws://${location.hostname}:${cfg.wsPort}/mqtt`, {
    clientId, clean: true, reconnectPeriod: 1000, username: 'dashboard', password: '',
  });

  function setStatus(state, text) {
    $('status').dataset.state = state;
    $('status').textContent = text;
  }

  function request(msg, onAnswer) {
    msg.id = 'r' + (++nextId);
    pending.set(msg.id, onAnswer || (() => {}));
    client.publish(own + 'request', JSON.stringify(msg), { qos: 1 });
  }

  function showError(error) {
    $('error').hidden = false;
    $('error').textContent = `${error.code}: ${error.message}`;
  }

  function clearError() {
    $('error').hidden = true;
    $('error').textContent = '';
  }

  function subscribe() {
    const old = subscription;
    subscription = null;
    if (old) request({ type: 'subscription', operation: 'unsubscribe', subscription_id: old });
    request({
      type: 'subscription', operation: 'subscribe', schema: 'public', entity: 'users',
      options: { snapshot: true, limit: 1000, sort: [{ column: 'id', direction: 'asc' }] },
    }, (answer) => {
      if (!answer.success) return showError(answer.error);
      subscription = answer.data.subscription_id;
      lastSeq = 0;
      users.clear();
      for (const u of answer.data.records) users.set(u.id, u);
      render();
    });
  }

  function onNotification(note) {
    if (note.subscription_id !== subscription || note.seq <= lastSeq) return;
    if (note.seq !== lastSeq + 1) return subscribe(); // a gap: take a fresh snapshot
    lastSeq = note.seq;
    if (note.operation === 'delete' || !note.matches) users.delete(note.data.id);
    else users.set(note.data.id, note.data);
    render(note.data.id);
  }

  function render(changed) {
    const rows = $('rows');
    rows.replaceChildren();
    for (const u of [...users.values()].sort((a, b) => a.id - b.id)) {
      const tr = document.createElement('tr');
      tr.dataset.id = u.id;
      tr.dataset.name = u.name;
      if (u.id === changed) tr.className = 'fresh';
      for (const v of [u.id, u.name, u.email, u.status]) {
        const td = document.createElement('td');
        td.textContent = v;
        tr.appendChild(td);
      }
      const actions = document.createElement('td');
      const edit = document.createElement('button');
      edit.textContent = 'Edit';
      edit.className = 'edit';
      edit.onclick = () => fill(u);
      const del = document.createElement('button');
      del.textContent = 'Delete';
      del.className = 'delete';
      del.onclick = () => write({ operation: 'delete', record_id: String(u.id) });
      actions.append(edit, ' ', del);
      tr.appendChild(actions);
      rows.appendChild(tr);
    }
    $('summary').textContent = `${users.size} users · subscription ${subscription || '…'} · seq ${lastSeq}`;
  }

  function fill(u) {
    $('id').value = u ? u.id : '';
    $('name').value = u ? u.name : '';
    $('email').value = u ? u.email : '';
    $('status-field').value = u ? u.status : 'active';
    $('update').disabled = !u;
  }

  function write(msg) {
    clearError();
    request(Object.assign({ type: 'request', schema: 'public', entity: 'users' }, msg), (answer) => {
      if (!answer.success) showError(answer.error);
      else if (msg.operation !== 'delete') fill(null);
    });
  }

  function formData() {
    return { name: $('name').value, email: $('email').value, status: $('status-field').value };
  }

  $('create').onclick = () => write({ operation: 'create', data: formData() });
  $('update').onclick = () => write({ operation: 'update', record_id: $('id').value, data: formData() });
  $('clear').onclick = () => { clearError(); fill(null); };

  client.on('connect', () => {
    setStatus('connected', 'connected');
    client.subscribe([own + 'response', own + 'notify/+'], { qos: 1 }, (err) => {
      if (err) return showError({ code: 'subscribe_failed', message: err.message });
      subscription = null; // a clean session ended the old subscription
      subscribe();
    });
  });
  client.on('reconnect', () => setStatus('connecting', 'reconnecting…'));
  client.on('offline', () => setStatus('offline', 'offline'));
  client.on('close', () => setStatus('offline', 'offline'));
  client.on('message', (topic, payload) => {
    const msg = JSON.parse(payload.toString());
    if (topic.startsWith(own + 'notify/')) return onNotification(msg);
    const handle = pending.get(msg.id);
    pending.delete(msg.id);
    if (handle) handle(msg);
    else if (!msg.success && msg.error) showError(msg.error);
  });
})();
