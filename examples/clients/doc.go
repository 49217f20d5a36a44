// Package clients holds the README's client examples (MQTT.js in js/,
// Python paho in python/, Go paho in gopaho/) and the test that runs each
// of them, and the README's mosquitto_rr lines, against the quickstart.
package clients
