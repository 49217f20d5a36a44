"""paho-mqtt client of the quickstart: create a user, read the active
users, print the answers, then disconnect.

Run: python3 examples/clients/python/client.py   (MQTT_HOST, MQTT_PORT)
"""
import json
import os
import uuid

import paho.mqtt.client as mqtt

client_id = "python-1"
# Request ids are unique per run: the server answers a write it has seen
# with the same id and payload (within 5 minutes) from its first answer.
run = uuid.uuid4().hex[:6]
requests = [
    {"id": f"create-1:{run}", "type": "request", "operation": "create", "schema": "public", "entity": "users",
     "data": {"name": "Python User", "email": "python@example.com", "status": "active"}},
    {"id": f"read-1:{run}", "type": "request", "operation": "read", "schema": "public", "entity": "users",
     "options": {"filters": [{"column": "name", "operator": "eq", "value": "Python User"}]}},
]


def send_next(client):
    client.publish(f"spec/{client_id}/request", json.dumps(requests.pop(0)), qos=1)


def on_connect(client, userdata, flags, rc, *_):
    client.subscribe(f"spec/{client_id}/response", qos=1)


def on_subscribe(client, userdata, mid, granted, *_):
    send_next(client)


def on_message(client, userdata, msg):
    answer = json.loads(msg.payload)
    names = [r["name"] for r in answer["data"]] if isinstance(answer.get("data"), list) else answer["data"]["name"]
    print("response", answer["id"].split(":")[0], answer["success"], names)
    if requests:
        send_next(client)
    else:
        client.disconnect()


if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1, client_id=client_id)
else:  # paho-mqtt 1.x (Debian 12)
    client = mqtt.Client(client_id=client_id)
client.username_pw_set("python-user", "")  # a token in the username, empty password
client.on_connect = on_connect
client.on_subscribe = on_subscribe
client.on_message = on_message
client.connect(os.environ.get("MQTT_HOST", "localhost"), int(os.environ.get("MQTT_PORT", "1883")), 60)
client.loop_forever()
