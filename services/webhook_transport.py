"""Sending a webhook: one POST to a checked address, and what came of it.

Plain Python, outside the models: the action decides what to send, the queue what to do
with the outcome (record it, or try again later). Nothing here retries or sleeps.

Only public addresses are called, unless the host is listed by the caller: a name is
resolved once, every address it resolves to is checked, and the connection goes to the
checked address (a second resolution could answer otherwise: DNS rebinding). Redirects are
not followed.
"""

import ipaddress
import socket
from urllib.parse import urlsplit, urlunsplit

import certifi
import urllib3

from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__)

# The system parameter listing the hosts (comma-separated) that may be called although not public
ALLOWED_HOSTS_PARAMETER = "crm_workflow_automation.webhook_allowed_hosts"
# An answer is kept up to this many characters, and read up to a few times as many bytes
ANSWER_SIZE = 500
# Answers worth another attempt, with the server errors (5xx): the others would be the same
RETRY_STATUSES = (408, 425, 429)


class WebhookError(Exception):
    """A webhook not delivered. ``problem`` is a lazy translation; ``retryable`` says whether
    the same POST may pass later (no answer, a server error)."""

    def __init__(self, problem, retryable):
        super().__init__(problem)
        self.problem = problem
        self.retryable = retryable


class WebhookRefused(WebhookError):
    """A webhook not sent at all: its address is not allowed."""

    def __init__(self, problem):
        super().__init__(problem, retryable=False)


def url_problem(url, allowed_hosts):
    """Why ``url`` cannot be a webhook's address (a lazy translation), or None.

    The checks that need no network: the form of the address, and a host written as an
    address (in any notation) that is not public.
    """
    if any(ord(char) <= 32 or ord(char) == 127 for char in url):
        return _lt("the address cannot contain spaces, line breaks or other control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return _lt("enter an http:// or https:// address")
    if parts.username is not None or parts.password is not None:
        return _lt("the address cannot carry a user name or password: pass a token in the path or the query instead")
    address = _literal_address(parts.hostname)
    if address and parts.hostname not in allowed_hosts and not _is_public(address):
        return _not_public(parts.hostname)
    return None


def display_url(url):
    """``url`` without its query and fragment, which may hold a token: what messages show."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def post(url, body, headers, timeout, allowed_hosts):
    """POST ``body`` (JSON text) to ``url``, once; return the answer's text ("HTTP 200: ...").

    ``timeout`` (seconds) bounds the connection and then the wait for the answer; so one call
    takes at most twice as long, and the name's resolution. Raise WebhookError.
    """
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = parts.hostname if parts.hostname in allowed_hosts else _public_address(parts.hostname, port)
    pool = _connection_pool(parts, address, port, timeout)
    path = urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        response = pool.urlopen(
            "POST", path, body=body.encode(), headers={"Host": parts.netloc.rpartition("@")[2], **headers},
            redirect=False, retries=False, preload_content=False, assert_same_host=False,
        )
    except urllib3.exceptions.NewConnectionError as error:  # a TimeoutError for urllib3, yet refused
        raise WebhookError(_lt("connection failed (%s)", _reason(error)), retryable=True) from error
    except urllib3.exceptions.TimeoutError as error:
        raise WebhookError(_lt("no answer within %s seconds", timeout), retryable=True) from error
    except urllib3.exceptions.HTTPError as error:
        raise WebhookError(_lt("connection failed (%s)", _reason(error)), retryable=True) from error
    try:
        answer = _read_answer(response)
    finally:
        response.release_conn()
        pool.close()
    if 200 <= response.status < 300:
        return answer
    raise WebhookError(answer, retryable=response.status >= 500 or response.status in RETRY_STATUSES)


def _connection_pool(parts, address, port, timeout):
    """A pool that connects to ``address`` and, for https, checks the certificate of the host."""
    timeout = urllib3.Timeout(connect=timeout, read=timeout)
    if parts.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, maxsize=1, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(),
            server_hostname=parts.hostname, assert_hostname=parts.hostname,
        )
    return urllib3.HTTPConnectionPool(address, port, timeout=timeout, maxsize=1)


def _read_answer(response):
    """"HTTP <status>: <the answer's start>", read in full only up to a few kilobytes."""
    raw = response.read(ANSWER_SIZE * 4, decode_content=True)
    body = raw.decode(errors="replace")
    if len(body) > ANSWER_SIZE or len(raw) == ANSWER_SIZE * 4:
        body = body[:ANSWER_SIZE] + "…"
    return _lt("HTTP %(status)s: %(body)s", status=response.status, body=body)


def _reason(error):
    """The cause of a connection error ("[Errno 111] Connection refused"), without urllib3's wrapping."""
    if isinstance(error, urllib3.exceptions.NewConnectionError):
        return str(error).rsplit(": ", 1)[-1]
    return str(error.args[-1] if error.args else error)


def _public_address(host, port):
    """The address to connect to for ``host``: resolved once, every address checked."""
    literal = _literal_address(host)
    if literal:
        if not _is_public(literal):
            raise WebhookRefused(_not_public(host))
        return str(literal)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as error:
        raise WebhookError(_lt("the host %(host)s could not be resolved (%(error)s)", host=host, error=error),
                           retryable=True) from error
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        if not _is_public(address):
            raise WebhookRefused(_lt(
                "%(host)s resolves to %(address)s, which is not a public address (loopback, private or "
                "link-local): to allow it, list it in the system parameter “%(parameter)s”",
                host=host, address=address, parameter=ALLOWED_HOSTS_PARAMETER,
            ))
    return str(addresses[0])


def _literal_address(host):
    """``host`` as an IP address if it is written as one, in any notation the resolver accepts
    (``0x7f000001``, ``2130706433``, ``127.1``); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        try:
            return ipaddress.ip_address(socket.inet_aton(host))
        except OSError:
            return None


def _is_public(address):
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _not_public(host):
    return _lt(
        "%(host)s is not a public address (loopback, private or link-local): to allow it, list it in the "
        "system parameter “%(parameter)s”",
        host=host, parameter=ALLOWED_HOSTS_PARAMETER,
    )
