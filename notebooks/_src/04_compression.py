# %% [markdown]
# # 04 · Response compression, done right and measured
#
# Compressing a JSON product list saves bytes and spends CPU. Which of the two matters
# depends on the link: the saved bytes on a slow one, the CPU on a fast one. This notebook
# measures both sides on a realistic payload and a real Nexios server, and says from its
# rounds where they break even.
#
# It starts with a trap. The tutorial this workbook grew from compresses responses in a
# Nexios **function middleware**: `response = await call_next()`, then
# `response.body = gzip.compress(response.body)`. In nexios 3.12.3 that middleware
# compresses **nothing**: after `call_next()` the body has already been rendered into an
# ASGI response the object does not expose, so `response.body` reads `b''`. The fix is an
# **ASGI middleware** that sits where the bytes flow (`app.wrap_asgi(...)`):
# `perf.compression.middleware.CompressionMiddleware`.
#
# **Before you start.** Nothing to run first: the notebook starts (or reuses) the embedded PostgreSQL and
# Redis itself. In run 20261205-025021-workbook (quick profile, the default; a 2-core machine shared with
# other work, load average ~5) it ran in **44 s**; the full profile took about **2.5 minutes** on a
# 2-core machine (measured before runs had ids). The profile is read once, when the
# kernel starts: to switch, start JupyterLab as `PERF_PROFILE=full python3 tasks.py lab`
# (or `quick`) and restart the kernel. Exercises with automatic checks are at the end.

# %% tags=["plumbing"]
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import Markdown, display

from perf import charts, exercises
from perf.compression import (
    DEFAULT_LEVELS,
    PREFERENCE,
    CompressionMiddleware,
    asgi_get,
    choose_encoding,
    codec_curve,
    codec_rounds,
    create_demo_app,
    create_naive_compression_middleware,
    decompress,
    delivery_rounds,
    end_to_end,
    level_grid,
    product_list_json,
    transfer_times,
)
from perf.config import get_settings
from perf.measure import compare_async, machine_info, readable, summarize
from perf.runs import current_run
from perf.services import ensure_services

current_run()  # this notebook's run: every chart below is recorded into it
settings = get_settings()
services = ensure_services(settings)  # not used for compression itself; kept for the workbook's contract
URLS = {"database_url": services.database_url, "redis_url": services.redis_url}  # for the exercises' checks
info = machine_info()
print("profile:", settings.profile)

# %% [markdown]
# ## The trap: the seed's function middleware
# The demo app (`perf.compression.demo_app`) serves `/products?size=N`, a product-list JSON
# of about N bytes. We add the seed-style middleware and send one request in process.
# The middleware counts what it saw.

# %%
# NBVAL_CHECK_OUTPUT
seen = {}
naive_app = create_demo_app(mode="none")
naive_app.add_middleware(create_naive_compression_middleware(stats=seen))
status, headers, body = await asgi_get(naive_app, "/products?size=100000", accept="gzip")
print("status:", status)
print("Content-Encoding:", headers.get("content-encoding"))
print("body is the uncompressed JSON:", body == product_list_json(100_000))
print("what the middleware saw:", seen)

# %% [markdown]
# Every request took the `if not content: return response` branch: the body it wanted to
# compress was empty. The seed's code looks right and does nothing but cost a call.
#
# ## The fix: an ASGI middleware
# `CompressionMiddleware` wraps the router with `app.wrap_asgi(...)`. Like Starlette's
# `GZipMiddleware` it holds back `http.response.start` until the first body chunk arrives,
# so it can still change the headers: set `Content-Encoding`, fix `Content-Length` (or drop
# it for a streamed body, which it compresses chunk by chunk with a flush after each) and
# add `Vary: Accept-Encoding` so a shared cache never serves a compressed body to a client
# that cannot read it.

# %%
# NBVAL_CHECK_OUTPUT
app = create_demo_app(mode="none")
app.wrap_asgi(CompressionMiddleware, minimum_size=1024)
for accept in ("gzip", "br", "zstd", "gzip, br, zstd", "identity"):
    status, headers, body = await asgi_get(app, "/products?size=100000", accept=accept)
    coding = headers.get("content-encoding", "identity")
    print(f"Accept-Encoding: {accept:<16} -> {coding:<8} decodes to the JSON: "
          f"{decompress(coding, body) == product_list_json(100_000)}  "
          f"under half the size: {len(body) < 50_000}  Vary: {headers['vary']}")

# %% [markdown]
# ## Negotiation: reading `Accept-Encoding` properly
# The seed checked `"gzip" in header`, which also matches `gzip;q=0` (an explicit *refusal*).
# `choose_encoding` parses q-values, `*` and `identity`; among the codings the client accepts
# it picks the one the client rates highest, and on a tie the server's preference
# (`zstd`, `br`, `gzip`, `deflate`). A malformed header means identity, never a 500.

# %%
# NBVAL_CHECK_OUTPUT
headers_to_try = ["gzip, deflate, br, zstd", "gzip;q=0", "br;q=0.5, gzip", "*", "*;q=0",
                  "identity;q=1, gzip;q=0.5", "gzip;q=2 (malformed)", ""]
print("server preference:", PREFERENCE)
for header in headers_to_try:
    print(f"{header!r:<30} -> {choose_encoding(header, PREFERENCE) or 'identity'}")

# %% [markdown]
# The seed's `should_compress` (`perf.compression.naive.seed_should_compress`, reproduced as
# written) called directly on the same kind of headers, beside the correct negotiation over the
# seed's own codings (gzip, deflate) and over the server's. It sends gzip to a client that
# refused it (`gzip;q=0`), ignores `GZIP` and `*`, and compresses for a malformed header.

# %%
# NBVAL_CHECK_OUTPUT
from perf.compression import seed_negotiation_table

print(seed_negotiation_table().to_string(index=False))

# %% [markdown]
# ## Ratio and speed per codec and level
# The payload is `perf.compression.payloads.product_list_json`: ids, UUIDs, SKUs, prices,
# timestamps and short descriptions, like a real product API. First the ratio by body size
# at each codec's default level: small bodies compress badly (headers and dictionaries
# dominate), which is why the middleware skips bodies under `minimum_size`.

# %%
sizes = settings.pick([1_000, 10_000, 100_000, 1_000_000], [1_000, 3_000, 10_000, 30_000, 100_000, 300_000, 1_000_000])
defaults = {name: [level] for name, level in DEFAULT_LEVELS.items()}
by_size = pd.concat([codec_curve(product_list_json(size), defaults, repeat=settings.pick(3, 9)) for size in sizes],
                    ignore_index=True)
charts.line_over(by_size, x="bytes_in", y="ratio", hue="label", logx=True, info=info,
                 title="Compression ratio by body size (default levels)",
                 xlabel="uncompressed JSON bytes", ylabel="ratio (uncompressed / compressed)")
plt.show()

# %% [markdown]
# Now every level on a 100 KB list: ratio against compression speed. Each line is one
# codec, each point one level, labelled with its number. Speeds are MB of input per
# second of **CPU time**, all levels interleaved round by round
# (`perf.measure.compare_cpu`): other processes on a shared machine
# cannot skew one level against another.

# %%
levels = level_grid(full=not settings.quick)
body_100k = product_list_json(100_000)
curve = codec_curve(body_100k, levels, repeat=settings.pick(5, 15))
fig = charts.line_over(curve, x="compress_mb_s", y="ratio", hue="codec", logx=True, info=info,
                       title="Ratio vs compression speed, 100 KB product list",
                       xlabel="compress MB/s (log)", ylabel="ratio")
for point in curve.itertuples():  # each point is a level: say which
    fig.axes[0].annotate(point.label.rsplit("-", 1)[-1], (point.compress_mb_s, point.ratio), fontsize=7,
                         xytext=(3, 3), textcoords="offset points")
plt.show()
readable(curve[["label", "ratio", "bytes_out", "compress_mb_s", "decompress_mb_s"]])

# %%
from perf.measure import compare

row = curve.set_index("label")
g6, g9 = row.loc["gzip-6"], row.loc["gzip-9"]
b4, b11 = row.loc["br-4"], row.loc["br-11"]
z3 = row.loc["zstd-3"]
cpu_rounds = codec_rounds(curve).groupby("label")["compress_s"].apply(list)
gzip_cpu = compare(cpu_rounds["gzip-9"], cpu_rounds["gzip-6"], a="gzip-9", b="gzip-6", words=("quicker", "slower"))
br_cpu = compare(cpu_rounds["br-11"], cpu_rounds["br-4"], a="br-11", b="br-4", words=("quicker", "slower"))
display(Markdown(
    f"**Pick the knee, not the maximum.** gzip-9 makes the body {100 * (1 - g9.bytes_out / g6.bytes_out):.1f}% "
    f"smaller than gzip-6, and in CPU time {gzip_cpu} "
    f"({g9.compress_mb_s:.0f} vs {g6.compress_mb_s:.0f} MB/s, medians). "
    f"br-11 makes the body {100 * (1 - b11.bytes_out / b4.bytes_out):.0f}% smaller than br-4, and in CPU time "
    f"{br_cpu}"
    + (": fine for static assets compressed once, costly per request. " if br_cpu.kind == "slower" else ". ")
    + f"zstd-3 reaches ratio {z3.ratio:.2f} at {z3.compress_mb_s:.0f} MB/s "
    f"and decompresses at {z3.decompress_mb_s:.0f} MB/s, which is why it is first in the server's preference. "
    f"The defaults in `perf.compression.codecs.DEFAULT_LEVELS` ({DEFAULT_LEVELS}) are meant to sit at these "
    "knees: the chart shows where this run put them."))

# %% [markdown]
# ## End to end through a running Nexios app
# One uvicorn server per setting, each in its own process so its CPU time is its own
# (read from `/proc`, nanosecond resolution), all up at once and hit in interleaved batches. The client asks for every
# coding; a server configured with one coding answers with it. `naive` is the seed's
# function middleware.

# %%
def asgi(coding, level):
    return {"mode": "asgi", "encodings": (coding,), "levels": {coding: level}}

setups = {"no compression": {"mode": "none"}, "naive (seed)": {"mode": "naive"},
          "gzip-6": asgi("gzip", 6), "br-4": asgi("br", 4), "zstd-3": asgi("zstd", 3)}
if not settings.quick:
    setups |= {"gzip-1": asgi("gzip", 1), "gzip-9": asgi("gzip", 9),
               "br-11": asgi("br", 11), "zstd-19": asgi("zstd", 19)}
e2e = end_to_end(setups, path="/products?size=100000", requests=settings.pick(10, 20), batches=settings.pick(3, 6))
cpu = summarize(e2e, by="setting", value="server_cpu_s")
charts.bar_with_spread(cpu, title="Server CPU per 100 KB response", unit="ms", value_label="CPU", info=info)
plt.show()
wire = e2e.groupby("setting", sort=False).agg(encoding=("encoding", "last"), wire_bytes=("wire_bytes", "median"),
                                               latency_ms=("latency_s", lambda s: 1e3 * s.median()))
readable(wire.join(cpu["median"].rename("cpu_ms") * 1e3))

# %%
base_cpu = cpu.loc["no compression", "median"]
e2e_rounds = e2e.sort_values("batch").groupby("setting")["server_cpu_s"].apply(list)
naive_cost = compare(e2e_rounds["naive (seed)"], e2e_rounds["no compression"], a="the naive middleware",
                     b="no middleware", words=("cheaper", "costlier"))
lines = [f"- **{name}**: {wire.loc[name, 'wire_bytes'] / 1e3:.1f} KB on the wire, "
         f"{(cpu.loc[name, 'median'] - base_cpu) * 1e3:+.2f} ms server CPU per response (difference of medians); "
         + str(compare(e2e_rounds[name], e2e_rounds["no compression"], a=name, b="no compression",
                       words=("cheaper", "costlier")))
         for name in cpu.index if name != "no compression"]
same_bytes = wire.loc["naive (seed)", "wire_bytes"] == wire.loc["no compression", "wire_bytes"]
display(Markdown(
    f"Without compression the server spends {base_cpu * 1e3:.2f} ms of CPU per response and sends "
    f"{wire.loc['no compression', 'wire_bytes'] / 1e3:.0f} KB.\n\n" + "\n".join(lines)
    + ("\n\nThe naive middleware sent exactly as many bytes as no middleware at all"
       if same_bytes else f"\n\nThe naive middleware sent {wire.loc['naive (seed)', 'wire_bytes']:,.0f} bytes "
       f"against {wire.loc['no compression', 'wire_bytes']:,.0f} with no middleware")
    + ". In server CPU per response, "
    f"{naive_cost}" + (": cost for nothing." if naive_cost.kind == "slower" else ".")
    + " The in-process comparison below isolates it."))

# %% [markdown]
# ## When does compressing pay? It depends on the client's bandwidth
# Time to deliver = compress + transfer + decompress (the same for every setting: the
# round trip, the server's other work). A slow link rewards the saved bytes, a fast one
# the saved CPU; where the two break even for this payload is what the crossovers below
# judge from this run's rounds.

# %%
bandwidths = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000]
picked = curve[curve["label"].isin(["gzip-6", "gzip-9", "br-4", "br-11", "zstd-3"])]
times = transfer_times(picked, bandwidths)
charts.line_over(times, x="bandwidth_mbit", y="total_s", hue="label", logx=True, logy=True, info=info,
                 title="Time to deliver a 100 KB product list", xlabel="client bandwidth (Mbit/s)",
                 ylabel="compress + transfer + decompress (s)")
plt.show()

# %%
from perf.measure import crossover


def delivery_crossover(a, b):
    return crossover(bandwidths, [delivery_rounds(curve, a, bw) for bw in bandwidths],
                     [delivery_rounds(curve, b, bw) for bw in bandwidths], a=a, b=b, x_name="bandwidth",
                     x_unit="Mbit/s")


vs_identity = {label: delivery_crossover(label, "identity") for label in picked["label"]}
at_10 = compare(delivery_rounds(curve, "zstd-3", 10), delivery_rounds(curve, "identity", 10), a="zstd-3",
                b="identity")
display(Markdown(
    "Against sending the 100 KB list uncompressed, from this run's rounds of CPU time:\n\n"
    + "\n".join(f"- {verdict}" for verdict in vs_identity.values())
    + f"\n\nAt 10 Mbit/s (a decent mobile link) {at_10}. Is a high level ever worth it per request? "
    f"br-11 against br-4: {delivery_crossover('br-11', 'br-4')}; gzip-9 against gzip-6: "
    f"{delivery_crossover('gzip-9', 'gzip-6')}."))

# %% [markdown]
# ## What a middleware costs per request
# The same small response (500 bytes, under `minimum_size`, so nothing gets compressed)
# through three apps, interleaved in one run, in process: no middleware, the seed's
# function middleware, the ASGI middleware. This is the toll every request pays.

# %%
plain_app = create_demo_app(mode="none")
function_app = create_demo_app(mode="naive")
asgi_app = create_demo_app(mode="asgi", minimum_size=1024)
small = "/products?size=500"
cost = await compare_async(
    {"no middleware": lambda: asgi_get(plain_app, small),
     "function middleware": lambda: asgi_get(function_app, small),
     "ASGI middleware": lambda: asgi_get(asgi_app, small)},
    warmup=20, repeat=settings.pick(20, 100), number=20)
cost_summary = cost.summary()
charts.bar_with_spread(cost_summary, title="Per-request cost of a compression middleware (nothing compressed)",
                       unit="µs", info=info)
plt.show()

# %%
none_us = cost_summary.loc["no middleware", "median"] * 1e6
fn_cost = cost.verdict("function middleware", "no middleware", a="a request through the seed's function middleware",
                       b="one without", words=("cheaper", "costlier"))
asgi_cost = cost.verdict("ASGI middleware", "no middleware", a="a request through the ASGI middleware",
                         b="one without", words=("cheaper", "costlier"))
display(Markdown(
    f"A request through the bare Nexios app costs {none_us:.0f} µs here (in process: Nexios builds its middleware "
    f"stack on every request). Measured round by round, {fn_cost}, for nothing: Nexios runs a function "
    f"middleware through a request/response bridge. For the ASGI middleware, {asgi_cost} (it parses "
    "`Accept-Encoding` once per distinct header value, reads the response headers and adds `Vary`)."))

# %% [markdown]
# ## Streams, events and secrets
# A streamed body is compressed chunk by chunk (memory stays bounded, the client can decode
# as it goes); `text/event-stream` is never compressed (each event must arrive when sent);
# a route that reflects user input next to a secret opts out with
# `perf.compression.middleware.disable_compression(response)`: compressed sizes would
# otherwise leak the secret byte by byte (the BREACH attack).

# %%
# NBVAL_CHECK_OUTPUT
for path in ("/stream?chunks=20&size=5000", "/events", "/private?q=guess"):
    status, headers, body = await asgi_get(app, path, accept="gzip")
    length = headers.get("content-length", "none (streamed)") if path != "/private?q=guess" else "set"
    print(f"{path:<28} Content-Encoding: {headers.get('content-encoding', 'identity'):<9}"
          f"Content-Length: {length}  "
          f"Vary: {headers['vary']}")

# %% [markdown]
# ### "Memory stays bounded": measured
# A large export streamed through three ways of serving it, in process: no compression,
# the seed's design (collect `response.body`, compress it in one call) and the ASGI
# middleware (compress each chunk as it passes). We record the peak Python allocation of
# each request (`perf.measure.peak_memory_async`: tracemalloc, so zlib's own fixed state
# is not counted) as the body grows.

# %%
from perf.compression import compression_memory

BODY_SIZES = settings.pick([1, 4, 16], [1, 4, 16, 64, 128])
streamed = await compression_memory(sizes=[mib * 2**20 for mib in BODY_SIZES], repeat=settings.pick(2, 3))
streamed_peak = streamed.groupby(["way", "body_mib"], as_index=False)["python_peak_mib"].median()
charts.line_over(streamed_peak, x="body_mib", y="python_peak_mib", hue="way", title="Peak memory per response",
                 xlabel="body size (MiB, uncompressed)", ylabel="peak Python allocation (MiB, median)",
                 legend_title="serving", info=info)
plt.show()

# %%
from perf.measure import trend

mem = streamed_peak.pivot(index="body_mib", columns="way", values="python_peak_mib")
big = BODY_SIZES[-1]
at_big = streamed[streamed.body_mib == big].pivot(index="round", columns="way", values="python_peak_mib")
streaming_peak = compare(at_big["streaming gzip"].tolist(), at_big["buffer then gzip"].tolist(),
                         a="the streaming peak", b="the buffering one", words=("smaller", "larger"), paired=True)
growth = {way: trend(streamed.loc[streamed.way == way, "body_mib"].tolist(),
                     streamed.loc[streamed.way == way, "python_peak_mib"].tolist(), what=f"the {way} peak", unit="MiB")
          for way in ("buffer then gzip", "streaming gzip")}
display(Markdown(
    f"For a {big} MiB body, buffering then compressing peaked at **{mem.loc[big, 'buffer then gzip']:.1f} MiB** "
    f"and the streaming middleware at **{mem.loc[big, 'streaming gzip']:.2f} MiB** "
    f"(medians of {streamed['round'].nunique()} rounds; round by round, {streaming_peak}). From "
    f"{BODY_SIZES[0]} to {big} MiB, {growth['buffer then gzip']}; {growth['streaming gzip']}. "
    "Ten concurrent exports hold ten buffered bodies at once; a streaming response holds a few chunks by "
    "construction."
))

# %% [markdown]
# **Take-aways.** Compress in an ASGI middleware, not a function middleware; negotiate
# properly; pick the level at the knee of the curve (zstd-3 / br-4 / gzip-6), not the
# maximum; skip small bodies, already-compressed types and event streams; always send
# `Vary: Accept-Encoding`; and opt out where a response mixes user input with secrets.

# %% [markdown]
# ## Exercises
# Edit each cell marked `# EXERCISE`, run it, then run the check under it: it runs your code
# against the real PostgreSQL and Redis (in a scratch schema and key prefix it drops
# afterwards) and answers with what passed, what failed and a hint. Reference solutions are in
# `notebooks/solutions/`; try first. `exercises.progress()` shows what you have done.

# %% [markdown]
# ### Exercise 04.negotiate: negotiate `Accept-Encoding` like RFC 9110
# `choose(header)` returns `"br"`, `"gzip"` or `None` (identity) for a request's `Accept-Encoding`
# when the server offers br and gzip. The starter is the seed's test; the check tries 23 headers.

# %%
# EXERCISE 04.negotiate: edit this cell, then run the check below
def choose(header):
    if header and "br" in header:
        return "br"
    if header and "gzip" in header:
        return "gzip"
    return None

# %%
await exercises.check("04.negotiate", choose, **URLS)

# %% [markdown]
# ### Exercise 04.worth: know when compressing is worth it
# `worth_compressing(status, content_type, headers, size)` says whether a response should be
# compressed. The check asks the real `CompressionMiddleware` about 14 everyday responses. The
# starter is the seed's rule: compress everything.

# %%
# EXERCISE 04.worth: edit this cell, then run the check below
def worth_compressing(status, content_type, headers, size):
    return True

# %%
await exercises.check("04.worth", worth_compressing, **URLS)

# %%
exercises.progress()

# %% tags=["plumbing"]
services.close()

# %% [markdown]
# ## This run against the previous one
# Every chart above also saved the numbers it shows into this run's folder
# (`build/runs/<run id>/04_compression/`, one CSV per chart). This cell compares them with the
# previous run of this notebook, figure by figure (B/A), and marks a change only when it
# exceeds the noise of the repeats. `python3 tasks.py runs compare A B` does the same for any two runs.

# %%
from perf.runs import compare_with_previous

compare_with_previous("04_compression")
