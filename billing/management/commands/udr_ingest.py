"""``manage.py udr_ingest --source NAGRA usage.csv|usage.jsonl``: load usage records in
batches of 1000 through ``udr_ingest`` (the same rules as the API)."""

import csv
import json
from itertools import islice
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from billing.services.ingestion import udr_ingest

BATCH = 1000


def _records(path: Path):
    with path.open(newline="", encoding="utf-8") as handle:
        if path.suffix.lower() == ".csv":
            yield from csv.DictReader(handle)
        elif path.suffix.lower() in {".jsonl", ".ndjson"}:
            for line in handle:
                if line.strip():
                    yield json.loads(line)
        else:
            raise CommandError("Give a .csv or .jsonl file.")


class Command(BaseCommand):
    help = "Ingest usage detail records (CSV with a header row, or JSON lines) from a source system."

    def add_arguments(self, parser):
        parser.add_argument("--source", required=True, help="The source system, e.g. NAGRA.")
        parser.add_argument("file", type=Path)

    def handle(self, *args, source, file, **options):
        if not file.is_file():
            raise CommandError(f"No file {file}.")
        records, offset = _records(file), 0
        accepted = reopened = duplicates = rejected = 0
        while batch := list(islice(records, BATCH)):
            result = udr_ingest(source=source, records=batch)
            accepted, duplicates, rejected = accepted + result.accepted, duplicates + result.duplicates, rejected + len(result.rejected)
            reopened += result.reopened
            for index, reasons in result.rejected:
                self.stderr.write(f"record {offset + index + 1}: {' '.join(reasons)}")
            offset += len(batch)
        self.stdout.write(f"{offset} records: {accepted} accepted ({reopened} reopened), {duplicates} duplicates, {rejected} rejected.")
