#!/usr/bin/env python3
"""A second, independent LDAP client for tests/ldap.rs: python's ldap3 (pure Python, its own
BER code), as softphones and integration scripts use it.

    ldap3_search.py URL BASE FILTER [--bind DN] [--password-env NAME | --password TEXT] [--attrs a,b]
                    [--size N] [--page N] [--start-tls CA_FILE] [--source ADDRESS]

Binds (simple, or anonymous without --bind), searches the subtree, and prints one JSON
object: {"bind": code, "result": code, "entries": [{"dn": ..., "attributes": {...}}]}.
With --page, the search is paged (RFC 2696) until the server returns an empty cookie; with
--source, the connection is made from that local address (e.g. 127.0.0.2: another client).
"""

import argparse
import json
import os
import ssl

import ldap3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("base")
    parser.add_argument("filter")
    parser.add_argument("--bind")
    parser.add_argument("--password-env")
    parser.add_argument("--password")
    parser.add_argument("--attrs", default="*")
    parser.add_argument("--size", type=int, default=0)
    parser.add_argument("--page", type=int, default=0)
    parser.add_argument("--start-tls")
    parser.add_argument("--source")
    args = parser.parse_args()

    tls = None
    if args.start_tls:
        tls = ldap3.Tls(ca_certs_file=args.start_tls, validate=ssl.CERT_REQUIRED)
    server = ldap3.Server(args.url, get_info=ldap3.NONE, tls=tls, connect_timeout=10)
    password = os.environ[args.password_env] if args.password_env else args.password
    connection = ldap3.Connection(
        server,
        user=args.bind,
        password=password,
        raise_exceptions=False,
        receive_timeout=20,
        source_address=args.source,
    )
    connection.open()
    if args.start_tls:
        connection.start_tls()
    connection.bind()
    out = {"bind": connection.result["result"], "entries": []}
    attributes = args.attrs.split(",")
    cookie = None
    while True:
        controls = None
        if args.page:
            controls = [ldap3.protocol.rfc2696.paged_search_control(False, args.page, cookie)]
        connection.search(
            args.base,
            args.filter,
            search_scope=ldap3.SUBTREE,
            attributes=attributes,
            size_limit=args.size,
            controls=controls,
        )
        out["result"] = connection.result["result"]
        out["message"] = connection.result.get("message", "")
        for item in connection.response or []:
            if item.get("type") != "searchResEntry":
                continue
            out["entries"].append(
                {
                    "dn": item["dn"],
                    "attributes": {
                        name: [bytes(v).decode("utf-8") for v in values]
                        for name, values in item["raw_attributes"].items()
                    },
                }
            )
        if not args.page:
            break
        page = connection.result.get("controls", {}).get("1.2.840.113556.1.4.319", {})
        cookie = page.get("value", {}).get("cookie")
        if not cookie:
            break
    connection.unbind()
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    main()
