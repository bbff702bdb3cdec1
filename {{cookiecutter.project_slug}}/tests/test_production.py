"""The production web server: gunicorn, with WhiteNoise serving the collected static files.

The test starts a real gunicorn with DEBUG off (and stops it, whatever happens).
"""

import re
import secrets
import socket
import sys
import urllib.request

import pytest
from django.conf import settings

from .processes import run_manage, start_command, stop_process_group, wait_for

pytestmark = pytest.mark.slow


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url):
    """(status, content type, body) of a GET, as a browser behind the TLS proxy sends it."""
    request = urllib.request.Request(url, headers={"X-Forwarded-Proto": "https"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers["Content-Type"], response.read().decode()


def answers(url):
    try:
        return get(url)
    except OSError:
        return None


def test_gunicorn_serves_the_admin_login_and_its_css_with_debug_off(live_env, tmp_path):
    env = {
        **live_env,
        "DJANGO_DEBUG": "False",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_STATIC_ROOT": str(tmp_path / "static"),
    }
    collected = run_manage("collectstatic", "--noinput", env=env)
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    wsgi = settings.WSGI_APPLICATION.rsplit(".", 1)[0] + ":application"
    server = start_command(
        [sys.executable, "-m", "gunicorn", wsgi, "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        log_path=tmp_path / "gunicorn.log",
        env=env,
    )
    try:
        page = wait_for(lambda: answers(f"http://127.0.0.1:{port}/admin/login/"), timeout=20)
        assert page, server.log()
        status, content_type, body = page
        assert status == 200 and content_type.startswith("text/html")
        css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', body)
        assert css, body[:2000]  # a hashed name: collected, cacheable for ever
        status, content_type, stylesheet = get(f"http://127.0.0.1:{port}{css.group(1)}")
        assert status == 200 and content_type.startswith("text/css")
        assert stylesheet.strip()
    finally:
        stop_process_group(server)
