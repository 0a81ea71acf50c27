"""schemathesis (pinned in requirements.txt) against the running API and its own /openapi.json:
every check, positive and negative data, stateful links, in a bounded budget; zero failures.
The HAR report proves the run reached the paging parameters and image_urls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from perf.api.server import ApiServer
from perf.api.settings import ApiSettings
from tests._api_helpers import drop_namespace, unique_name

ST = str(Path(sys.executable).with_name("st"))


@pytest.fixture(scope="module")
def server(database_url: str, redis_url: str) -> Iterator[ApiServer]:
    schema = unique_name("t_api_schema")
    try:
        with ApiServer(ApiSettings(database_url=database_url, redis_url=redis_url, schema=schema,
                                   products=30)) as srv:
            yield srv
    finally:
        drop_namespace(database_url, schema, redis_url, schema)


def test_the_document_describes_every_route_with_its_answers(server: ApiServer):
    doc = httpx.get(server.url + "/openapi.json").json()
    assert doc["info"] == {"title": "perf product API", "version": doc["info"]["version"],
                           "description": doc["info"]["description"]}
    assert set(doc["paths"]) == {"/products", "/products/{product_id}", "/uploads", "/tasks/{task_id}", "/health",
                                 "/metrics", "/metrics.json", "/hello", "/openapi.json"}
    listing = doc["paths"]["/products"]["get"]
    limits = {p["name"]: (p["schema"].get("minimum"), p["schema"].get("maximum")) for p in listing["parameters"]}
    assert limits == {"page": (1, 10_000_000), "per_page": (1, 100), "category": (1, 2**31 - 1),
                      "after": (0, 2**63 - 1)}
    create = doc["paths"]["/products"]["post"]
    assert create["security"] == [{"bearerAuth": []}] and listing["security"] == []
    assert {"201", "400", "401", "405", "408", "409", "413", "415", "422", "503"} <= set(create["responses"])
    assert create["responses"]["422"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert doc["components"]["securitySchemes"] == {"bearerAuth": {
        "type": "http", "scheme": "bearer", "description": "the server's api_token (PERF_API_TOKEN)"}}


def test_schemathesis_finds_nothing(server: ApiServer, tmp_path: Path):
    har = tmp_path / "run.har"
    command = [ST, "run", server.url + "/openapi.json", "--checks", "all", "--mode", "all",
               "-H", f"Authorization: Bearer {server.token}", "--max-examples", "20", "--max-time", "20",
               # one worker: with two threads, hypothesis' ast use hits CPython 3.11's "AST constructor
               # recursion depth mismatch" (a thread-safety bug, gh-106905) now and then: a crash, not a finding
               "--workers", "1", "--seed", "13", "--generation-database", "none",
               "--report", "har", "--report-har-path", str(har)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    # every generated case passed ("No issues found", or a warning such as "Missing test data" when
    # the time ran out before the stateful phase created a task: a gap in coverage, not a failure)
    cases = re.search(r"(\d+) generated, (\d+) passed(?:, (\d+) skipped)?\s*$", run.stdout, re.MULTILINE)
    assert cases and cases.group(1) == cases.group(2), run.stdout[-2000:]
    entries = json.loads(har.read_text())["log"]["entries"]
    urls = [e["request"]["url"] for e in entries]
    bodies = [e["request"].get("postData", {}).get("text", "") for e in entries]
    for param in ("page=", "per_page=", "category=", "after="):
        assert any(param in url for url in urls), f"no request used {param}"
    assert any('"image_urls"' in body for body in bodies)
    # the count within --max-time depends on the machine (499-600+ seen alone, 71 beside two other
    # workers): a floor that proves a real run, not a speed; what it must have reached is asserted above
    assert len(entries) >= 30
    statuses = {e["response"]["status"] for e in entries}
    assert not {s for s in statuses if s >= 500}, statuses
