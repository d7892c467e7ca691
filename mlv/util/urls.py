"""URLs safe to print: credentials in the user-info part or the query are masked."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_QUERY = (
    "token", "sig", "signature", "secret", "password", "key", "sas", "credential", "connection",
    "auth",
)  # fmt: skip
# Schemes whose user name is only a name (ssh://git@host). Elsewhere a user part without a
# password is often a token (https://TOKEN@github.com/...): treated as a secret. With a
# password (user:password@) the user part is a name and the password the secret.
NAME_ONLY_USER = ("ssh", "sftp", "git", "git+ssh", "ssh+git")


def has_credentials(url: str) -> bool:
    """Does url carry a password, a token as its user name or a secret query parameter
    (never commit such a URL)?"""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed [ of an IPv6 address: no URL, no credentials
        return False
    if parts.password or (parts.username and _secret_user(parts.scheme)):
        return True
    return any(_secret_name(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True))


def _secret_user(scheme: str) -> bool:
    return len(scheme) > 1 and scheme.lower() not in NAME_ONLY_USER


def _secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SECRET_QUERY)


def redact(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable url>"
    if not parts.scheme or len(parts.scheme) <= 1:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        if ":" not in userinfo and _secret_user(parts.scheme):
            user = "***"  # a user name with no password: likely a token
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _secret_name(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secrets_in(url: str) -> list[str]:
    """The password and secret query values of url: text never to print."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    found = [parts.password] if parts.password else []
    if not parts.password and parts.username and _secret_user(parts.scheme):
        found.append(parts.username)
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if _secret_name(k) and v]
    return found


def scrub(text: str, secrets: list[str]) -> str:
    """text with every secret replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def scheme_of(url: str) -> str:
    """ "s3" for s3://b/p, "" for a plain path (also on Windows-style drive letters)."""
    parts = urlsplit(url)
    if len(parts.scheme) <= 1:
        return ""
    return parts.scheme.lower()


def is_folder(url: str) -> bool:
    return scheme_of(url) in ("", "file", "local")
