"""Revokes a refresh token through RFC 7009 with Authlib, an existing OAuth client
library, as a public client (no client secret: the refresh token proves itself).

Usage: revoke_refresh.py REVOCATION_URL < refresh_token

The token is read from standard input (never the command line, which every local
user can read). Prints the HTTP status of the revocation response; exits 0 when the
server answered 200, 1 otherwise. Loopback URLs only: the test serves plain HTTP on
127.0.0.1, which Authlib allows only when told so.
"""

import os
import sys
from urllib.parse import urlsplit


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: revoke_refresh.py REVOCATION_URL < refresh_token", file=sys.stderr)
        return 2
    url = sys.argv[1]
    if urlsplit(url).hostname != "127.0.0.1":
        print("loopback URLs only", file=sys.stderr)
        return 2
    # Plain HTTP on loopback, for the test: Authlib refuses it otherwise.
    os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"
    from authlib.integrations.requests_client import OAuth2Session

    token = sys.stdin.read().strip()
    if not token:
        print("no token on standard input", file=sys.stderr)
        return 2
    client = OAuth2Session(
        client_id="tessera-reference",
        revocation_endpoint_auth_method="none",
    )
    client.trust_env = False  # no proxy from the environment
    response = client.revoke_token(url, token=token, token_type_hint="refresh_token", timeout=10)
    print(response.status_code)
    return 0 if response.status_code == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
