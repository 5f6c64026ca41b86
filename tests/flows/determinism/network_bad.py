import http.client
import socket
import urllib.request as web

import httpx
import requests

import flow_api


def handler(system, this, inputs):
    status = requests.get(inputs["url"]).status_code  # <- found
    body = web.urlopen(inputs["url"]).read()  # <- found
    with httpx.Client() as client:  # <- found
        data = client.get(inputs["url"]).json()
    conn = http.client.HTTPSConnection("example.com")  # <- found
    sock = socket.create_connection(("example.com", 80))  # <- found
    this.set_output(status=status, size=len(body), data=data, conn=str(conn), sock=str(sock))
    return this.success("fetched")
