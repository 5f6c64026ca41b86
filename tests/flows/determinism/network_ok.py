import functools
import http.client
import socket
import urllib.request as web

import httpx
import requests

import flow_api


def status_of(url):
    return requests.get(url).status_code


def _open(url):
    return web.urlopen(url).read()


def body_of(url):
    return _open(url)


def ping(host, port=80):
    with socket.create_connection((host, port)):
        return True


def handler(system, this, inputs):
    status = this.step(status_of, inputs["url"])
    body = this.step(body_of, inputs["url"])
    data = this.step(lambda: httpx.get(inputs["url"]).json())

    def head():
        conn = http.client.HTTPSConnection("example.com")
        conn.request("HEAD", "/")
        return conn.getresponse().status

    code = this.step(head)
    up = this.step(functools.partial(ping, "example.com"))
    request = web.Request(inputs["url"])
    this.set_output(status=status, size=len(body), data=data, code=code, up=up, url=request.full_url)
    return this.success("fetched")
