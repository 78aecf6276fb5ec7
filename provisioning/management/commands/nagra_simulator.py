"""``manage.py nagra_simulator --port 8070``: the Nagra sandbox (see provisioning/simulator.py)."""

from pathlib import Path

from django.core.management.base import BaseCommand

from provisioning.simulator import SimulatorServer


class Command(BaseCommand):
    help = "Run the Nagra simulator: a SOAP server speaking our smsservice_1.2 contract, with state and fault switches."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8070)
        parser.add_argument("--username", default="", help="Require HTTP basic credentials (with --password).")
        parser.add_argument("--password", default="")
        parser.add_argument("--latency", type=float, default=0.0, help="Seconds before each SOAP call is processed.")
        parser.add_argument("--latency-after-apply", type=float, default=0.0, help="Seconds between applying and answering.")
        parser.add_argument("--down", action="store_true", help="Start down: every SOAP call gets HTTP 503.")
        parser.add_argument("--verbose", action="store_true", help="Log every HTTP request.")
        parser.add_argument("--state-file", type=Path, default=None,
                            help="Keep the platform's accounts and applied commands in this JSON file across restarts.")

    def handle(self, *args, host, port, username, password, latency, latency_after_apply, down, verbose, state_file, **options):
        server = SimulatorServer(host, port, credentials=(username, password) if username else None, verbose=verbose,
                                 state_file=state_file)
        server.platform.control({"latency": latency, "latency_after_apply": latency_after_apply, "down": down})
        self.stdout.write(f"Nagra simulator on {server.address} (WSDL: {server.address}?wsdl; switches: POST /control)", ending="\n")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
