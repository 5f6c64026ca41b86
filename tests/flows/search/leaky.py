"""Leaves words to search for in its log, a message and its error, and a secret that is recorded masked."""


def handler(system, this, inputs):
    this.log("unicorn sighting at dawn")
    this.message(subject="Quarterly report", message="the walrus ledger is ready")
    try:
        this.connect(connector_type="REST", url="http://127.0.0.1:9/x?api_key=" + inputs["key"])
    except Exception as exc:
        this.log(f"connection failed: {exc}")
    raise ValueError("kaboom zeppelin")
