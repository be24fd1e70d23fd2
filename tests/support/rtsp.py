"""A real RTSP server on loopback for end-to-end tests and benchmarks.

Debian's gst-rtsp-server (run by Debian's /usr/bin/python3, which has the gi
bindings; `scripts/ensure-rtsp.sh` installs them) serves a shared H.264 stream
at rtsp://127.0.0.1:<port><mount> over TCP and UDP. It relays RTP that a
feeder sends it on a loopback UDP port; the feeder (this module run with the
venv's python: `python -m tests.support.rtsp feed CLIP UDP_PORT`) loops an
MPEG-TS clip of vtest (people walking) in real time with PyAV, with
timestamps that keep increasing across loops. ../shared/notes/video-test-media.md §3
explains the choices (MPEG-TS so SPS/PPS are in-band, a 4 MiB UDP buffer).

    server = RtspServer.start_or_skip()   # skips (fails with CI=true) when it cannot run
    server.url                            # rtsp://127.0.0.1:<port>/cam
    server.kill(); server.start()         # down, then up again on the same port
    server.close()
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GST_PYTHON = os.environ.get("FACILITY_RTSP_PYTHON", "/usr/bin/python3")

_SERVER = r"""
import sys, gi
gi.require_version("Gst", "1.0"); gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer, GLib
Gst.init(None)
port, mount, udp = sys.argv[1], sys.argv[2], sys.argv[3]
launch = (f"( udpsrc address=127.0.0.1 port={udp} buffer-size=4194304 "
          'caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96" '
          "! rtph264depay ! h264parse config-interval=-1 "
          "! rtph264pay name=pay0 pt=96 config-interval=1 )")
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1"); server.set_service(port)
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(launch)
factory.set_shared(True)
server.get_mount_points().add_factory(mount, factory)
if server.attach(None) == 0:
    print("BIND FAILED " + port, flush=True); sys.exit(3)
print(f"READY rtsp://127.0.0.1:{port}{mount}", flush=True)
GLib.MainLoop().run()
"""


def media_dir() -> Path:
    return ROOT / os.environ.get("FACILITY_CACHE_DIR", ".cache") / "media"


def ensure_media() -> Path:
    """The cached vtest clips (scripts/fetch-test-media.sh is idempotent)."""
    folder = media_dir()
    if not (folder / "vtest.avi").exists():
        subprocess.run(
            [str(ROOT / "scripts" / "fetch-test-media.sh")],
            check=True,
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHON": sys.executable},
        )
    return folder


def ts_clip(seconds: float = 30, fps: int = 10, size: tuple[int, int] | None = None) -> Path:
    """An MPEG-TS H.264 clip of vtest (1 s GOP, no B-frames, SPS/PPS at
    every keyframe), made once with PyAV and cached beside the other clips."""
    import av

    folder = ensure_media()
    suffix = f"_{size[0]}x{size[1]}" if size else ""
    dst = folder / f"vtest_{int(seconds)}s_{fps}fps{suffix}_g{fps}.ts"
    if dst.exists() and dst.stat().st_size > 0:
        return dst
    tmp = dst.with_suffix(".ts.part")
    with av.open(str(folder / "vtest.avi")) as inp, av.open(str(tmp), "w", format="mpegts") as out:
        vin = inp.streams.video[0]
        width, height = size or (vin.codec_context.width, vin.codec_context.height)
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": "veryfast", "bf": "0", "g": str(fps), "keyint_min": str(fps)}
        vs.codec_context.time_base = Fraction(1, fps)
        src_fps = float(vin.average_rate or 10)
        n_out = 0
        for i, frame in enumerate(inp.decode(vin)):
            t = i / src_fps
            if t >= seconds:
                break
            while n_out / fps < t + 1 / src_fps - 1e-9 and n_out / fps < seconds:
                vf = frame
                if (vf.width, vf.height) != (width, height):
                    vf = vf.reformat(width=width, height=height, format="yuv420p")
                else:
                    vf = vf.reformat(format="yuv420p")
                vf.pts = n_out
                vf.time_base = Fraction(1, fps)
                for packet in vs.encode(vf):
                    out.mux(packet)
                n_out += 1
        for packet in vs.encode():
            out.mux(packet)
    os.replace(tmp, dst)
    return dst


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable_reason() -> str:
    """Empty when the RTSP server can run here; else why not (after trying
    scripts/ensure-rtsp.sh once)."""
    result = subprocess.run(
        [str(ROOT / "scripts" / "ensure-rtsp.sh")], capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        return (result.stderr.strip().splitlines() or ["ensure-rtsp.sh failed"])[-1]
    return ""


class RtspServer:
    """gst-rtsp-server + a looping PyAV feeder, both child processes."""

    def __init__(self, clip: Path | None = None, mount: str = "/cam", port: int = 0) -> None:
        self.clip = clip
        self.mount = mount
        self.port = port or free_port()
        self.udp_port = free_port(socket.SOCK_DGRAM)
        self.server: subprocess.Popen[bytes] | None = None
        self.feeder: subprocess.Popen[bytes] | None = None

    @classmethod
    def start_or_skip(cls, clip: Path | None = None, mount: str = "/cam") -> RtspServer:
        """Start one, or skip the test with the reason (a failure when CI=true)."""
        import pytest

        reason = unavailable_reason()
        if reason:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"RTSP server unavailable in CI: {reason}")
            pytest.skip(f"RTSP server unavailable: {reason}")
        server = cls(clip or ts_clip(), mount)
        server.start()
        return server

    @property
    def url(self) -> str:
        return f"rtsp://127.0.0.1:{self.port}{self.mount}"

    @property
    def running(self) -> bool:
        return self.server is not None and self.server.poll() is None

    def start(self, timeout_s: float = 10) -> None:
        if self.running:
            return
        if self.clip is None:
            self.clip = ts_clip()
        deadline = time.monotonic() + timeout_s
        while True:  # the port may linger briefly after a kill
            self.server = subprocess.Popen(
                [GST_PYTHON, "-c", _SERVER, str(self.port), self.mount, str(self.udp_port)],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            assert self.server.stdout is not None
            line = self.server.stdout.readline().decode()
            if line.startswith("READY"):
                break
            self.server.wait(timeout=5)
            if time.monotonic() > deadline:
                raise RuntimeError(f"RTSP server did not start on {self.port}: {line!r}")
            time.sleep(0.2)
        self.feeder = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.rtsp",
                "feed",
                str(self.clip),
                str(self.udp_port),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self) -> None:
        """Both processes, at once (SIGKILL): clients see the connection drop."""
        for proc in (self.feeder, self.server):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        self.server = self.feeder = None

    def wait_playable(self, timeout_s: float = 15) -> None:
        """Block until a client gets a decoded frame (the feeder is flowing)."""
        import av

        deadline = time.monotonic() + timeout_s
        error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                with av.open(
                    self.url, options={"rtsp_transport": "tcp", "timeout": "5000000"}
                ) as container:
                    next(container.decode(video=0))
                    return
            except Exception as exc:  # retried until the deadline
                error = exc
                time.sleep(0.3)
        raise RuntimeError(f"{self.url} not playable: {error}")

    def close(self) -> None:
        self.kill()


def feed(clip: str, udp_port: int) -> None:
    """Send `clip` as H.264/RTP to 127.0.0.1:udp_port in real time, forever."""
    import av

    source = av.open(clip)
    video = source.streams.video[0]
    sink = av.open(f"rtp://127.0.0.1:{udp_port}?pkt_size=1316", "w", format="rtp")
    out = sink.add_stream_from_template(video)
    time_base = video.time_base
    assert time_base is not None
    offset = 0  # in time_base units, added per loop so timestamps keep rising
    first: int | None = None
    last = 0
    frame = round(1 / (float(video.average_rate or 10) * float(time_base)))
    started = time.monotonic()
    while True:
        for packet in source.demux(video):
            if packet.dts is None or packet.size == 0:
                continue
            if first is None:
                first = packet.dts
            dts = packet.dts - first + offset
            pts = (packet.pts if packet.pts is not None else packet.dts) - first + offset
            due = started + float(dts * time_base)
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            packet.dts, packet.pts = dts, pts
            packet.stream = out
            sink.mux(packet)
            last = max(last, dts)
        offset = last + frame
        first = None
        source.seek(0)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "feed":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        feed(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit("usage: python -m tests.support.rtsp feed CLIP UDP_PORT")
