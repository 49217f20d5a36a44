package testbroker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// natsReadyTimeout bounds the wait for a NATS cluster to carry MQTT
// messages between its nodes (its JetStream streams for MQTT are created a
// few seconds after start).
const natsReadyTimeout = 60 * time.Second

const natsNotInstalled = "nats-server not installed (apt-get install -y nats-server)"

// NATSCluster starts n nats-server nodes (the Debian package's binary)
// clustered on loopback, each with JetStream and an MQTT listener, and
// returns the nodes' MQTT URLs once a QoS 1 message published at the last
// node reaches a subscriber at the first. The nodes are stopped by PID
// when the test ends. Without nats-server the test is skipped, or fails
// if the CI environment variable is set.
func NATSCluster(t testing.TB, n int) []string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil && isFile("/usr/sbin/nats-server") { // Debian's place, not always on PATH
		bin, err = "/usr/sbin/nats-server", nil
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal(natsNotInstalled)
		}
		t.Skip(natsNotInstalled)
	}
	dir := t.TempDir()
	ports := make([][3]int, n) // client, cluster, mqtt
	free, err := freePorts(3 * n)
	if err != nil {
		t.Fatalf("testbroker: free ports: %v", err)
	}
	for i := range ports {
		copy(ports[i][:], free[3*i:])
	}
	urls := make([]string, n)
	for i := range n {
		var routes []string
		for j := range n {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[j][1]))
			}
		}
		conf := fmt.Sprintf(`server_name: n%d
listen: 127.0.0.1:%d
jetstream { store_dir: %q }
cluster { name: mqttspec, listen: 127.0.0.1:%d, routes: [%s] }
mqtt { listen: 127.0.0.1:%d, stream_replicas: 1, consumer_replicas: 1, consumer_memory_storage: true }
`, i+1, ports[i][0], filepath.Join(dir, fmt.Sprintf("js%d", i+1)), ports[i][1], strings.Join(routes, ", "), ports[i][2])
		file := filepath.Join(dir, fmt.Sprintf("n%d.conf", i+1))
		if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
			t.Fatalf("testbroker: %v", err)
		}
		out := &lockedBuffer{}
		cmd := exec.Command(bin, "-c", file)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatalf("testbroker: start nats-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(stopTimeout):
				_ = cmd.Process.Kill()
				<-exited
			}
			if t.Failed() {
				t.Logf("nats-server n%d output:\n%s", i+1, out.String())
			}
		})
		urls[i] = "tcp://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[i][2]))
	}
	if err := natsCarries(urls[0], urls[n-1]); err != nil {
		t.Fatalf("testbroker: NATS cluster not ready: %v", err)
	}
	return urls
}

// natsCarries waits until a QoS 1 message published at to's node arrives
// at a subscriber connected to from's node.
func natsCarries(from, to string) error {
	deadline := time.Now().Add(natsReadyTimeout)
	var last error
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		if last = natsRoundTrip(from, to, attempt); last == nil {
			return nil
		}
		time.Sleep(200 * time.Millisecond) // the cluster gives no readiness signal over MQTT
	}
	return last
}

func natsRoundTrip(from, to string, attempt int) error {
	dial := func(url, id string) (paho.Client, error) {
		c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).
			SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second))
		tok := c.Connect()
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			return nil, errors.Join(errors.New("connect "+url), tok.Error())
		}
		return c, nil
	}
	topic := fmt.Sprintf("testbroker/ready/%d/%d", os.Getpid(), attempt)
	sub, err := dial(from, fmt.Sprintf("ready-sub-%d", attempt))
	if err != nil {
		return err
	}
	defer sub.Disconnect(0)
	got := make(chan struct{}, 1)
	tok := sub.Subscribe(topic, 1, func(paho.Client, paho.Message) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return errors.Join(errors.New("subscribe"), tok.Error())
	}
	pub, err := dial(to, fmt.Sprintf("ready-pub-%d", attempt))
	if err != nil {
		return err
	}
	defer pub.Disconnect(0)
	if tok := pub.Publish(topic, 1, false, "ready"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		return errors.Join(errors.New("publish"), tok.Error())
	}
	select {
	case <-got:
		return nil
	case <-time.After(2 * time.Second):
		return errors.New("message did not cross the cluster")
	}
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// freePorts returns n distinct free loopback ports: the listeners are held
// until all are chosen (asked one at a time, the system may hand out the
// same port twice).
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		held = append(held, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
