"""Go-template rendering throughput: profiles rendered per second, against naive baselines.

Baselines: ``str.format`` (no conditionals, no defaults: the floor any engine pays) and a regex that
substitutes ``{{ .field }}`` (what a "regex subset" engine would do). Both can only express the simple
field-substitution template; the realistic templates (defaults, conditionals, range, printf) are ours only.
Optionally renders the same workload with the real Go engine (built from tests/templating/gorender.go).

    .venv/bin/python benchmarks/templating_throughput.py --profiles 20000 --runs 5
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from airflow_provider_lytics.templating import MessageTemplates, Template

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


def timed(fn, profiles: list[dict], runs: int) -> float:
    """Median profiles/s over ``runs``."""
    rates = []
    for _ in range(runs):
        start = time.perf_counter()
        for p in profiles:
            fn(p)
        rates.append(len(profiles) / (time.perf_counter() - start))
    return statistics.median(rates)


FIELD_RE = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")


def regex_baseline(template: str):
    def render(p: dict) -> str:
        return FIELD_RE.sub(lambda m: str(p.get(m.group(1), "<no value>")), template)

    return render


def go_rate(profiles: list[dict], template: str) -> float | None:
    """Profiles/s for the real Go engine (parse once, execute per profile), if Go is installed."""
    import json
    import os
    import shutil
    import subprocess
    import tempfile

    go = shutil.which("go")
    if not go or not Path("/usr/share/gocode/src/github.com/Masterminds/sprig").is_dir():
        return None
    src = r"""package main
import ("bytes";"encoding/json";"fmt";"io";"os";"text/template";"time";"github.com/Masterminds/sprig")
func main() {
	var in struct { Template string; Profiles []map[string]interface{} }
	b, _ := io.ReadAll(os.Stdin); json.Unmarshal(b, &in)
	t := template.Must(template.New("t").Funcs(sprig.TxtFuncMap()).Parse(in.Template))
	var buf bytes.Buffer
	start := time.Now()
	for _, p := range in.Profiles { buf.Reset(); t.Execute(&buf, p) }
	fmt.Println(float64(len(in.Profiles)) / time.Since(start).Seconds())
}"""
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bench.go").write_text(src)
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": "/usr/share/gocode",
               "GOCACHE": os.environ.get("GOCACHE", "/tmp/lytics-gocache")}  # fmt: skip
        subprocess.run([go, "build", "-o", "bench", "bench.go"], cwd=tmp, env=env, check=True, capture_output=True)
        payload = json.dumps({"Template": template, "Profiles": profiles}).encode()
        out = subprocess.run([str(Path(tmp, "bench"))], input=payload, capture_output=True, check=True)
        return float(out.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-go", action="store_true", help="skip the real Go engine comparison")
    args = parser.parse_args()
    profiles = make_profiles(args.profiles)
    print(f"Python {platform.python_version()} on {platform.machine()}, {args.profiles} profiles, "
          f"median of {args.runs} runs (profiles/s)")  # fmt: skip

    fmt = "Hey, {first_name}"
    rows = [
        ("field: str.format baseline", timed(lambda p: fmt.format_map({"first_name": "<no value>", **p}), profiles,
                                             args.runs)),
        ("field: regex substitution baseline", timed(regex_baseline(TEMPLATES["field"]), profiles, args.runs)),
    ]  # fmt: skip
    for name, source in TEMPLATES.items():
        tmpl = Template(source)
        rows.append((f"{name}: this engine (parsed once)", timed(tmpl.render, profiles, args.runs)))
        if not args.no_go:
            rate = go_rate(profiles, source)
            if rate is not None:
                rows.append((f"{name}: Go text/template (reference)", rate))
    messages = MessageTemplates({"title": TEMPLATES["field"], "body": TEMPLATES["alert_body"]})
    rows.append(("title+body message set (try_render)", timed(messages.try_render, profiles, args.runs)))
    width = max(len(r[0]) for r in rows)
    for name, rate in rows:
        print(f"  {name:<{width}}  {rate:>12,.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
