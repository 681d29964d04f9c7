"""The baseline for webhook_ack.py: a Flask endpoint that parses the JSON and answers, and nothing else."""

from flask import Flask, request

app = Flask(__name__)


@app.post("/webhooks/strava")
def webhook():
    request.get_json(silent=True)
    return {"status": "received"}
