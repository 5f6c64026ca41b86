"""Every form of secret the engine masks, sent for real: the values come from the worker's
environment (``S_<FORM>``), so that not even this source holds them. A REST call with a
cookie, an ``X-Auth`` header, ``auth``/``sig`` query parameters and a header named by
``secrets=[...]``; COMMAND calls with secrets after options, in ``user:pw`` and in
``NAME=value``, as a list and as a command line; a call through stored connector ``api``."""

import os
import sys

import flow_api

PRINT_ARGV = "import sys; print(len(sys.argv))"  # says nothing of the arguments it got


def handler(system, this, inputs):
    s = {name[2:].lower(): value for name, value in os.environ.items() if name.startswith("S_")}
    rest = this.connect(
        connector_type="REST",
        url=f"{inputs['base']}/login?auth={s['query_auth']}&sig={s['query_sig']}&page=1",
        headers={"Cookie": f"sid={s['cookie']}", "X-Auth": s["x_auth"], "X-Tenant": s["listed"], "Accept": "json"},
        secrets=["X-Tenant"],
    )
    args = this.connect(
        connector_type="COMMAND",
        args=[sys.executable, "-c", PRINT_ARGV, "--password", s["arg_password"], "-u", f"admin:{s['arg_user']}",
              f"DB_PASSWORD={s['arg_pair']}", "--token", s["arg_token"]],
    )
    line = this.connect(
        connector_type="COMMAND",
        command=f"{sys.executable} -c '{PRINT_ARGV}' -p {s['line_p']} --user admin:{s['line_user']}",
    )
    stored = this.connect("api")
    this.log("all connected", rest.get("output_value")["status_code"], stored.get("output_value")["status_code"])
    this.set_output(argc=[args.get("output_value")["stdout"], line.get("output_value")["stdout"]],
                    cookies=rest.get("output_value")["headers"].get("Set-Cookie"))
    return this.success("done")
