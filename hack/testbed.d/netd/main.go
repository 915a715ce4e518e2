// Command netd is the test bed's pod-network daemon, a stand-in for kindnetd
// (which the Go module proxy here does not serve). On each node it:
//   - writes the CNI config for the node's pod CIDR (ptp + host-local + portmap),
//   - routes every other node's pod CIDR via that node's InternalIP.
//
// It watches Node objects through the API server with the pod's service account,
// using only the standard library and netlink.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/vishvananda/netlink"
)

const (
	saDir      = "/var/run/secrets/kubernetes.io/serviceaccount"
	cniDir     = "/etc/cni/net.d"
	cniFile    = "10-testbed.conflist"
	resyncWait = 2 * time.Second
)

type node struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Spec struct {
		PodCIDR string `json:"podCIDR"`
	} `json:"spec"`
	Status struct {
		Addresses []struct {
			Type    string `json:"type"`
			Address string `json:"address"`
		} `json:"addresses"`
	} `json:"status"`
}

func (n node) internalIP() string {
	for _, a := range n.Status.Addresses {
		if a.Type == "InternalIP" && net.ParseIP(a.Address).To4() != nil {
			return a.Address
		}
	}
	return ""
}

type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient() (*client, error) {
	host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
	if host == "" || port == "" {
		return nil, fmt.Errorf("not running in a pod: KUBERNETES_SERVICE_HOST/PORT unset")
	}
	token, err := os.ReadFile(filepath.Join(saDir, "token"))
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(filepath.Join(saDir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("no certificate in %s/ca.crt", saDir)
	}
	return &client{
		base:  "https://" + net.JoinHostPort(host, port),
		token: string(bytes.TrimSpace(token)),
		http:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}},
	}, nil
}

func (c *client) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return resp, nil
}

// syncOnce lists nodes, applies config and routes, then watches until the stream ends.
func (c *client) syncOnce(ctx context.Context, self string) error {
	resp, err := c.get(ctx, "/api/v1/nodes")
	if err != nil {
		return err
	}
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
		Items []node `json:"items"`
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil {
		return err
	}
	nodes := map[string]node{}
	for _, n := range list.Items {
		nodes[n.Metadata.Name] = n
	}
	apply(self, nodes)

	resp, err = c.get(ctx, "/api/v1/nodes?watch=1&allowWatchBookmarks=false&resourceVersion="+list.Metadata.ResourceVersion)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	scanner.Buffer(make([]byte, 1<<20), 16<<20)
	for scanner.Scan() {
		var ev struct {
			Type   string `json:"type"`
			Object node   `json:"object"`
		}
		if err := json.Unmarshal(scanner.Bytes(), &ev); err != nil {
			return err
		}
		switch ev.Type {
		case "ADDED", "MODIFIED":
			nodes[ev.Object.Metadata.Name] = ev.Object
		case "DELETED":
			delete(nodes, ev.Object.Metadata.Name)
		case "ERROR":
			return fmt.Errorf("watch error event")
		}
		apply(self, nodes)
	}
	return scanner.Err()
}

func apply(self string, nodes map[string]node) {
	if me, ok := nodes[self]; ok && me.Spec.PodCIDR != "" {
		if err := writeCNIConfig(me.Spec.PodCIDR); err != nil {
			log.Printf("writing CNI config: %v", err)
		}
	}
	for name, n := range nodes {
		if name == self || n.Spec.PodCIDR == "" || n.internalIP() == "" {
			continue
		}
		if err := routeVia(n.Spec.PodCIDR, n.internalIP()); err != nil {
			log.Printf("route %s via %s (%s): %v", n.Spec.PodCIDR, n.internalIP(), name, err)
		}
	}
}

func writeCNIConfig(podCIDR string) error {
	conf := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "testbed",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": true,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": %q }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
`, podCIDR)
	path := filepath.Join(cniDir, cniFile)
	if old, err := os.ReadFile(path); err == nil && string(old) == conf {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(conf), 0o644); err != nil {
		return err
	}
	log.Printf("CNI config written for pod CIDR %s", podCIDR)
	return os.Rename(tmp, path) // kubelet must never read a half-written file
}

func routeVia(cidr, gateway string) error {
	_, dst, err := net.ParseCIDR(cidr)
	if err != nil {
		return err
	}
	gw := net.ParseIP(gateway)
	existing, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Dst: dst}, netlink.RT_FILTER_DST)
	if err == nil && len(existing) == 1 && existing[0].Gw.Equal(gw) {
		return nil
	}
	log.Printf("route %s via %s", cidr, gateway)
	return netlink.RouteReplace(&netlink.Route{Dst: dst, Gw: gw})
}

func main() {
	self := os.Getenv("NODE_NAME")
	if self == "" {
		log.Fatal("NODE_NAME is not set (downward API)")
	}
	c, err := newClient()
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	for {
		if err := c.syncOnce(ctx, self); err != nil {
			log.Printf("node watch ended: %v; resyncing", err)
		}
		time.Sleep(resyncWait)
	}
}
