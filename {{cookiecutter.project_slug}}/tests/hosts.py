"""Test hosts on one machine, for the tests that run the web server and the clusters on
machines of their own (test_hosts.py): a Linux network namespace per host, joined to
this one by a veth pair that the test can cut.

The servers listen on loopback, which a namespace cannot reach: each host talks to
PostgreSQL{% if cookiecutter.broker == "redis" %} and Redis{% endif %} through a relay in this namespace, at this end of its link.
A host's processes start with processes.start_command() under `ip netns exec`, so the
usual process-group stop applies to them. Everything here is made by the test and
removed by Hosts.remove(), whatever happened.
"""

import fcntl
import ipaddress
import os
import shutil
import socket
import subprocess
import threading
from urllib.parse import urlsplit, urlunsplit

# Each link is a /30 of this network that no interface here uses yet: this namespace at
# its first address, the host at its second. Tests that run at the same time pick theirs
# one after the other (LOCK).
NETWORK = ipaddress.ip_network("10.213.0.0/16")
LOCK = "/tmp/tq-test-hosts.lock"
DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "redis": 6379}
COMMAND_TIMEOUT = 10


def ip(*args, check=True):
    return subprocess.run(
        ["ip", *args], capture_output=True, text=True, check=check, timeout=COMMAND_TIMEOUT
    )


def links_in_use():
    addresses = ip("-4", "-o", "addr", "show").stdout.split()
    return {
        ipaddress.ip_interface(word).network.supernet(new_prefix=30)
        for word in addresses
        if "/" in word and ipaddress.ip_interface(word) in NETWORK
    }


def why_not_here():
    """Why namespaces cannot be made on this machine, or None."""
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"tq-probe-{os.getpid()}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    ip("netns", "delete", probe, check=False)
    return None


class Relay:
    """Accepts connections at (host, port) and pipes each to a server on loopback."""

    def __init__(self, host, port, upstream):
        self.upstream = upstream
        self.listener = socket.create_server((host, port))
        self.connections = []
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                server = socket.create_connection(self.upstream, timeout=COMMAND_TIMEOUT)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.connections += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self.pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        """Stop accepting, and end every connection: the servers see them close."""
        self.listener.close()
        with self.lock:
            for end in self.connections:
                try:
                    end.shutdown(socket.SHUT_RDWR)  # wakes the pipe blocked on it
                except OSError:
                    pass
                end.close()


class Host:
    """A network namespace and its link: `address` is the host's, `gateway` ours."""

    def __init__(self, name, index):
        self.name = name
        self.namespace = f"tq-{os.getpid()}-{index}"
        self.outside = f"tqv{os.getpid() % 100000}o{index}"  # interface names: 15 characters
        self.inside = f"tqv{os.getpid() % 100000}i{index}"
        self.gateway = self.address = None
        self.relays = []

    def make(self, link):
        self.gateway, self.address = (str(address) for address in link.hosts())
        ip("netns", "add", self.namespace)
        ip("link", "add", self.outside, "type", "veth", "peer", "name", self.inside)
        ip("link", "set", self.inside, "netns", self.namespace)
        ip("addr", "add", f"{self.gateway}/30", "dev", self.outside)
        ip("link", "set", self.outside, "up")
        for args in (
            ("addr", "add", f"{self.address}/30", "dev", self.inside),
            ("link", "set", self.inside, "up"),
            ("link", "set", "lo", "up"),
        ):
            ip("-n", self.namespace, *args)

    def relay(self, url):
        """A URL for this host that reaches the server of `url` (on loopback) over its link."""
        parts = urlsplit(url)
        upstream = (parts.hostname, parts.port or DEFAULT_PORTS[parts.scheme])
        relay = Relay(self.gateway, 0, upstream)
        self.relays.append(relay)
        netloc = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        netloc += f"{self.gateway}:{relay.listener.getsockname()[1]}"
        return urlunsplit(parts._replace(netloc=netloc))

    def command(self, *args):
        """args, to run on this host."""
        return ["ip", "netns", "exec", self.namespace, *map(str, args)]

    def cut(self):
        """The link goes down: nothing crosses it, and nothing says so to either side."""
        ip("link", "set", self.outside, "down")

    def remove(self):
        for relay in self.relays:
            relay.close()
        ip("link", "delete", self.outside, check=False)
        ip("netns", "delete", self.namespace, check=False)


class Hosts:
    """The hosts of one test, by name."""

    def __init__(self, *names):
        self.hosts = {name: Host(name, index) for index, name in enumerate(names)}

    def __getitem__(self, name):
        return self.hosts[name]

    def make(self):
        with open(LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            in_use = links_in_use()
            free = (link for link in NETWORK.subnets(new_prefix=30) if link not in in_use)
            for host in self.hosts.values():
                host.make(next(free))
        return self

    def remove(self):
        for host in self.hosts.values():
            host.remove()
