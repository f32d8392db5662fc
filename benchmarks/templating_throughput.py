"""Go-template rendering throughput: profiles rendered per second, against naive baselines.

Baselines: ``str.format`` (no conditionals, no defaults: the floor any engine pays) and a regex that
substitutes ``{{ .field }}`` (what a "regex subset" engine would do). Both can only express the simple
field-substitution template; the realistic templates (defaults, conditionals, range, printf) are ours only.
Optionally renders the same workload with the real Go engine (text/template + sprig, when Go is installed).

Every engine runs in its own process through ``_harness.run_process`` (wall, CPU of the tree, peak RSS), the
engines alternating run by run; each process also reports its in-process rendering rate (profiles/s of the
render loop alone, templates parsed once). The in-process rate is the headline: the whole-process figures are
dominated by interpreter start-up and, for Go, by JSON-decoding the profiles.

    .venv/bin/python benchmarks/templating_throughput.py --profiles 20000 --runs 5
    .venv/bin/python benchmarks/templating_throughput.py --quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as h

TEMPLATES = {
    "field": "Hey, {{ .first_name }}",
    "doc_examples": (
        "{{ if .first_name }}Hey, {{ .first_name }}{{ else }}I wish I knew you{{ end }} / "
        'Hey, {{.last_name | default "valued customer"}} / '
        "{{ if and .first_name .last_name }}{{ .first_name }} {{ .last_name }}{{ else }}you{{ end }} / "
        '{{ if eq .subscriber_status "subscribed" }}You are a subscriber!{{ else }}You should subscribe!{{ end }}'
    ),
    "alert_body": (
        '{{ $name := .first_name | default "there" }}Hi {{ $name | title }},\n'
        '{{- if gt .ltv 1000.0 }} thanks for being a top customer ({{ printf "%.2f" .ltv }}).{{ end }}\n'
        "Your interests: {{ range $i, $t := .tags }}{{ if $i }}, {{ end }}{{ $t | upper }}{{ end }}.\n"
        "{{ with .address }}Store near {{ .city }}{{ else }}Shop online{{ end }}"
    ),
}


def make_profiles(n: int, seed: int = 11) -> list[dict]:
    rng = random.Random(seed)
    names = ["Ada", "Grace", "Linus", "Barbara", "Ken", "Margaret"]
    out = []
    for i in range(n):
        profile = {
            "email": f"user{i}@example.com",
            "subscriber_status": rng.choice(["subscribed", "unsubscribed"]),
            "ltv": round(rng.uniform(0, 3000), 2),
            "tags": rng.sample(["pro", "beta", "news", "vip"], 2),
        }
        if rng.random() < 0.8:
            profile["first_name"] = rng.choice(names)
        if rng.random() < 0.6:
            profile["last_name"] = rng.choice(names) + "son"
        if rng.random() < 0.5:
            profile["address"] = {"city": rng.choice(["London", "Paris", "Tokyo"])}
        out.append(profile)
    return out


def loop_rate(fn, profiles: list[dict]) -> float:
    """Profiles/s of one render loop."""
    start = time.perf_counter()
    for p in profiles:
        fn(p)
    return len(profiles) / (time.perf_counter() - start)


FIELD_RE = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def regex_baseline(template: str):
    def render(p: dict) -> str:
        return FIELD_RE.sub(lambda m: str(p.get(m.group(1), "<no value>")), template)

    return render


GO_SOURCE = r"""package main
import ("bytes";"encoding/json";"fmt";"io";"os";"text/template";"time";"github.com/Masterminds/sprig")
func main() {
	var in struct { Template string; Profiles []map[string]interface{} }
	b, _ := io.ReadAll(os.Stdin); json.Unmarshal(b, &in)
	t := template.Must(template.New("t").Funcs(sprig.TxtFuncMap()).Parse(in.Template))
	var buf bytes.Buffer
	start := time.Now()
	for _, p := range in.Profiles { buf.Reset(); t.Execute(&buf, p) }
	fmt.Printf("{\"rate\": %f}\n", float64(len(in.Profiles)) / time.Since(start).Seconds())
}"""


def build_go(directory: Path) -> Path | None:
    """The Go reference renderer, if Go and sprig are installed."""
    go = shutil.which("go")
    if not go or not Path("/usr/share/gocode/src/github.com/Masterminds/sprig").is_dir():
        return None
    (directory / "bench.go").write_text(GO_SOURCE)
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode",
           "GOCACHE": os.environ.get("GOCACHE", "/tmp/lytics-gocache")}  # fmt: skip
    subprocess.run([go, "build", "-o", "bench", "bench.go"], cwd=directory, env=env, check=True, capture_output=True)
    return directory / "bench"


def worker(kind: str, template: str, count: int) -> None:
    """Child process: render ``count`` profiles with one engine; print the in-process rate as JSON."""
    profiles = make_profiles(count)
    if kind == "format":
        fmt = "Hey, {first_name}"
        rate = loop_rate(lambda p: fmt.format_map({"first_name": "<no value>", **p}), profiles)
    elif kind == "regex":
        rate = loop_rate(regex_baseline(TEMPLATES["field"]), profiles)
    elif kind == "messages":
        from airflow_provider_lytics.templating import MessageTemplates

        messages = MessageTemplates({"title": TEMPLATES["field"], "body": TEMPLATES["alert_body"]})
        rate = loop_rate(messages.try_render, profiles)
    else:
        from airflow_provider_lytics.templating import Template

        rate = loop_rate(Template(TEMPLATES[template]).render, profiles)
    print(json.dumps({"rate": rate}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    h.add_common_args(parser, runs=5)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--no-go", action="store_true", help="skip the real Go engine comparison")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--template", default="field", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.template, args.profiles)
        return 0
    if args.quick:
        args.profiles, args.runs, args.no_go = 500, 1, True
    work = Path(tempfile.mkdtemp(prefix="lytics-tmpl-bench-"))
    try:
        go = None if args.no_go else build_go(work)

        def py(kind: str, template: str = "field"):
            cmd = h.python_cmd(__file__, "--worker", kind, "--template", template, "--profiles", args.profiles)
            return lambda _run: h.run_process(cmd)

        def go_side(template: str):
            payload = json.dumps({"Template": TEMPLATES[template], "Profiles": make_profiles(args.profiles)})
            (work / f"{template}.json").write_text(payload)
            return lambda _run: h.run_process(["sh", "-c", f'"{go}" < "{work / f"{template}.json"}"'])

        groups: dict[str, dict] = {"field": {"this_engine": py("ours", "field"), "str_format": py("format"),
                                             "regex": py("regex")}}  # fmt: skip
        for name in ("doc_examples", "alert_body"):
            groups[name] = {"this_engine": py("ours", name)}
        groups["message_set"] = {"this_engine_try_render": py("messages")}
        if go is not None:
            for name in TEMPLATES:
                groups[name]["go_text_template"] = go_side(name)
        result: dict = {
            "profiles": args.profiles,
            "goal": "in-process render rate (profiles/s); whole-process figures are start-up dominated",
            "rates_in_process": {}, "summary": {}, "runs": {},
        }  # fmt: skip
        for group, sides in groups.items():
            measures = h.paired(sides, args.runs, log=lambda line, g=group: print(f"{g}: {line}", file=sys.stderr))
            summary = {n: h.summarize(ms, inproc_keys=("rate",)) for n, ms in measures.items()}
            result["summary"][group] = summary
            result["rates_in_process"][group] = {n: round(s["inproc_rate"]["median"]) for n, s in summary.items()}
            result["runs"][group] = h.measures_json(measures)
        h.report(args, result)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
