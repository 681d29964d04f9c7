"""`backstride demo`: the sandbox host and the plugin on loopback, the demo athlete connected, the sample
activities posted, and the descriptions the plugin wrote printed."""

from __future__ import annotations

import sys
import threading
from typing import TextIO

from plugin.analysis.notes import NOTE_START
from plugin.sandbox.stack import Stack, StackError

# Tried first so the printed URLs are easy to remember; any free port is used when they are taken.
PLUGIN_PORT = 5000
SANDBOX_PORT = 5100


def run_demo(once: bool, out: TextIO = sys.stdout, stop: threading.Event | None = None) -> int:
    stack = Stack(plugin_port=PLUGIN_PORT, sandbox_port=SANDBOX_PORT)
    try:
        print("Starting the sandbox host and Backstride on loopback...", file=out, flush=True)
        stack.start()
        stack.subscribe()
        connected = stack.connect()
        if connected.status_code != 200:
            raise StackError(f"connecting the demo athlete failed with {connected.status_code}")
        print("Demo athlete connected; posting the sample activities.\n", file=out, flush=True)
        state = stack.control("GET", "/state").json()
        uploaded = [stack.upload(seed=key) for key in state["seed_keys"]]
        stack.wait_settled()

        for activity in uploaded:
            final = stack.activity(activity["id"])
            annotated = NOTE_START in (final.get("description") or "")
            print(f"== {final['name']} ({final['sport_type']}){'' if annotated else ': no note'}", file=out)
            if final.get("description"):
                print(final["description"], file=out)
            print(file=out)

        print("Open:", file=out)
        print(f"  Backstride landing page  {stack.plugin_url}/", file=out)
        # The browser is not signed in yet: Connect there once (the sandbox skips its consent page).
        print(f"  Runner settings          {stack.plugin_url}/settings (Connect first, one click)", file=out)
        print(f"  Sandbox activities       {stack.sandbox_url('/')}", file=out)
        for activity in uploaded:
            page = stack.sandbox_url(f"/activities/{activity['id']}")
            print(f"  {activity['name'][:24]:<24} {page}", file=out)
        if once:
            return 0
        print("\nServing until Ctrl-C.", file=out, flush=True)
        (stop or threading.Event()).wait()
        return 0
    except KeyboardInterrupt:
        print("\nStopping.", file=out)
        return 0
    except StackError as exc:
        print(f"backstride demo: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
