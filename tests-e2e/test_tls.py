"""TLS 1.3 and mutual TLS on Herald's own port, with a CA and certificates the test makes: a client with a certificate
from that CA gets in; a client without one, with one from another CA, or limited to TLS 1.2 is refused."""
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import HERALD_BIN, free_port


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(directory, name):
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
            "-keyout", f"{directory}/{name}.key", "-out", f"{directory}/{name}.pem")


def issue(directory, ca, name, san=None):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{directory}/{name}.key", "-out", f"{directory}/{name}.csr")
    extra = []
    if san:
        with open(f"{directory}/{name}.ext", "w") as f:
            f.write(f"subjectAltName={san}\n")
        extra = ["-extfile", f"{directory}/{name}.ext"]
    openssl("x509", "-req", "-in", f"{directory}/{name}.csr", "-CA", f"{directory}/{ca}.pem", "-CAkey", f"{directory}/{ca}.key",
            "-CAcreateserial", "-days", "2", "-out", f"{directory}/{name}.pem", *extra)


@pytest.fixture
def pki():
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    directory = tempfile.mkdtemp(prefix="herald-pki-")
    make_ca(directory, "ca")
    make_ca(directory, "rogue-ca")
    issue(directory, "ca", "server", san="IP:127.0.0.1,DNS:localhost")
    issue(directory, "ca", "service")
    issue(directory, "rogue-ca", "intruder")
    return directory


def start(pki, env_extra):
    port = free_port()
    data = tempfile.mkdtemp(prefix="herald-tls-")
    env = dict(os.environ, HERALD_BCRYPT_COST="10", **env_extra)
    log = open(os.path.join(data, "stdout.log"), "w")
    proc = subprocess.Popen([HERALD_BIN, "serve", "--port", str(port), "--data-dir", data], stdout=log, stderr=subprocess.STDOUT, env=env)
    return proc, port, data


def wait_https(port, pki, proc, data):
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(open(os.path.join(data, "stdout.log")).read())
        try:
            r = requests.get(f"https://127.0.0.1:{port}/readyz", verify=f"{pki}/ca.pem", cert=(f"{pki}/service.pem", f"{pki}/service.key"), timeout=1)
            if r.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError("herald did not become ready over TLS: " + open(os.path.join(data, "stdout.log")).read())


def handshake(port, pki, cert=None, maximum=None):
    """The negotiated TLS version, or the error that ended the handshake (or the first read after it)."""
    context = ssl.create_default_context(cafile=f"{pki}/ca.pem")
    if cert:
        context.load_cert_chain(f"{pki}/{cert}.pem", f"{pki}/{cert}.key")
    if maximum:
        context.maximum_version = maximum
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                # TLS 1.3 servers refuse a missing client certificate after the handshake: the refusal arrives on read.
                tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                reply = tls.recv(64)
                if not reply:
                    return "closed"
                return tls.version()
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError) as error:
        return f"refused: {error}"


def test_mutual_tls_admits_only_certificates_from_the_services_ca(pki):
    proc, port, data = start(pki, {"HERALD_TLS_CERT_FILE": f"{pki}/server.pem", "HERALD_TLS_KEY_FILE": f"{pki}/server.key",
                                   "HERALD_TLS_CLIENT_CA_FILE": f"{pki}/ca.pem"})
    try:
        wait_https(port, pki, proc, data)
        assert handshake(port, pki, cert="service") == "TLSv1.3"
        assert handshake(port, pki).startswith("refused") or handshake(port, pki) == "closed"
        intruder = handshake(port, pki, cert="intruder")
        assert intruder.startswith("refused") or intruder == "closed", intruder
        assert handshake(port, pki, cert="service", maximum=ssl.TLSVersion.TLSv1_2).startswith("refused")
        # Plain HTTP on the TLS port gets no HTTP answer.
        with pytest.raises(requests.RequestException):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_tls_without_client_certificates_serves_any_client(pki):
    proc, port, data = start(pki, {"HERALD_TLS_CERT_FILE": f"{pki}/server.pem", "HERALD_TLS_KEY_FILE": f"{pki}/server.key"})
    try:
        wait_https(port, pki, proc, data)
        assert handshake(port, pki) == "TLSv1.3"
        r = requests.get(f"https://127.0.0.1:{port}/healthz", verify=f"{pki}/ca.pem", timeout=5)
        assert r.status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.parametrize("env, message", [
    ({"HERALD_TLS_CERT_FILE": "/nonexistent.pem"}, "go together"),
    ({"HERALD_TLS_CERT_FILE": "/nonexistent.pem", "HERALD_TLS_KEY_FILE": "/nonexistent.key"}, "HERALD_TLS_CERT_FILE"),
    ({"HERALD_TLS_CLIENT_CA_FILE": "/x.pem"}, "needs HERALD_TLS_CERT_FILE"),
])
def test_bad_tls_settings_stop_start_up_with_a_clear_message(pki, env, message):
    proc, port, data = start(pki, env)
    assert proc.wait(timeout=30) != 0
    output = open(os.path.join(data, "stdout.log")).read()
    assert message in output, output
