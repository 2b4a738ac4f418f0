"""Writes stream-dashboard.json (run: python3 deploy/grafana/generate.py). Edit the panels here,
not the JSON; tests/operator_kit.rs checks every query against a live node and Prometheus."""
import json
import os
DS = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
panels = []
def panel(title, targets, unit="short", desc=""):
    i = len(panels)
    t = [{"datasource": DS, "expr": e, "legendFormat": l, "refId": chr(65 + k)} for k, (e, l) in enumerate(targets)]
    panels.append({
        "id": i + 1, "type": "timeseries", "title": title, "description": desc, "datasource": DS,
        "gridPos": {"h": 8, "w": 12, "x": (i % 2) * 12, "y": (i // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": t,
    })
J = '{job=~"$job"}'
def sel(extra=""):
    return '{job=~"$job"%s}' % extra
panel("Connections", [("stream_connections" + J, "all"), ("sum by (transport) (stream_transport_connections" + J + ")", "{{transport}}")],
      desc="Open WebSocket connections and gRPC streams (stream_connections), by transport.")
panel("Subscriptions by type", [("sum by (type) (stream_subscriptions" + J + ")", "{{type}}")])
panel("Messages/s", [("sum by (type) (rate(stream_messages_sent_total" + J + "[1m]))", "{{type}}"),
                     ("sum by (transport) (rate(stream_transport_messages_sent_total" + J + "[1m]))", "via {{transport}}")], unit="ops")
panel("Commit-to-send latency", [(f"histogram_quantile({q}, sum by (le) (rate(stream_commit_to_send_seconds_bucket" + J + "[5m])))", f"p{int(float(q)*100) if q != '0.999' else 99.9}") for q in ["0.5", "0.9", "0.99"]], unit="s",
      desc="From the dispatcher producing an update to handing it to the client's transport.")
panel("Commit hook cost", [(f"histogram_quantile({q}, sum by (le) (rate(stream_commit_hook_seconds_bucket" + J + "[5m])))", f"p{l}") for q, l in [("0.5", "50"), ("0.99", "99")]], unit="s",
      desc="Time the node's commit path spends handing a block to the stream module (target p99 <= 50 us).")
panel("Dispatcher lag", [("stream_dispatcher_lag_blocks" + J, "queued blocks"), ("stream_committed_height" + J + " - stream_dispatched_height" + J, "committed - dispatched")],
      desc="/health answers 503 when committed - dispatched exceeds health_max_lag_blocks.")
panel("Dropped blocks, resyncs, decode errors", [("increase(stream_blocks_dropped_total" + J + "[5m])", "blocks dropped"), ("increase(stream_resyncs_total" + J + "[5m])", "resyncs"), ("increase(stream_decode_errors_total" + J + "[5m])", "decode errors")])
panel("Refusals by reason", [("sum by (reason) (rate(stream_connection_rejected_total" + J + "[5m]))", "{{reason}}"), ("sum by (reason) (rate(stream_replays_refused_total" + J + "[5m]))", "resume: {{reason}}")], unit="ops")
panel("Slow consumers (buffer overflow, dropped)", [("sum by (subscription_type) (rate(stream_buffer_overflow_total" + J + "[5m]))", "{{subscription_type}}"), ("rate(stream_write_timeouts_total" + J + "[5m])", "dropped (write_timeout)")], unit="ops",
      desc="Updates a client skipped because it had not read the previous one; WebSocket clients dropped because a write did not finish within write_timeout.")
panel("Node height", [("stream_committed_height" + J, "committed"), ("stream_dispatched_height" + J, "dispatched"), ("streamd_block_height" + J, "streamd")])
panel("Block interval", [("histogram_quantile(0.5, sum by (le) (rate(stream_block_interval_seconds_bucket" + J + "[5m])))", "p50"), ("histogram_quantile(0.99, sum by (le) (rate(stream_block_interval_seconds_bucket" + J + "[5m])))", "p99"), ("histogram_quantile(0.99, sum by (le) (rate(streamd_block_interval_seconds_bucket" + J + "[5m])))", "streamd p99")], unit="s")
panel("Blocks dispatched/s", [("rate(stream_blocks_dispatched_total" + J + "[1m])", "blocks/s")], unit="ops")
panel("Connection lifetime", [("histogram_quantile(0.5, sum by (le) (rate(stream_connection_duration_bucket" + J + "[15m])))", "p50"), ("histogram_quantile(0.9, sum by (le) (rate(stream_connection_duration_bucket" + J + "[15m])))", "p90"), ("sum by (transport) (rate(stream_transport_connections_opened_total" + J + "[5m]))", "opened/s {{transport}}")], unit="s")
panel("Topics and index", [("stream_topics" + J, "topics"), ("stream_dispatcher_subscriptions" + J, "indexed subscriptions")])
panel("Replay window", [("stream_replay_window_blocks" + J, "blocks"), ("stream_replay_oldest_height" + J, "oldest height"), ("rate(stream_replays_total" + J + "[5m])", "resumes/s")])
panel("Replay window memory", [("stream_replay_window_bytes" + J, "bytes")], unit="bytes")
panel("Transactions", [("rate(streamd_txs_total" + J + "[1m])", "txs/s"), ("rate(streamd_failed_txs_total" + J + "[1m])", "failed/s"), ("streamd_mempool_txs" + J, "mempool txs")])
panel("Node memory bounds", [("streamd_mempool_bytes" + J, "mempool"), ("streamd_kept_tx_bytes" + J, "kept txs")], unit="bytes")
panel("Connection guard", [("sum by (port, reason) (rate(streamd_connections_refused_total" + J + "[5m]))", "{{port}} {{reason}}"), ("streamd_connections_handshaking" + J, "handshaking {{port}}")])
dash = {
    "__inputs": [{"name": "DS_PROMETHEUS", "label": "Prometheus", "description": "", "type": "datasource", "pluginId": "prometheus", "pluginName": "Prometheus"}],
    "__requires": [{"type": "grafana", "id": "grafana", "name": "Grafana", "version": "10.0.0"}, {"type": "datasource", "id": "prometheus", "name": "Prometheus", "version": "1.0.0"}, {"type": "panel", "id": "timeseries", "name": "Time series", "version": ""}],
    "title": "stream", "uid": "stream-module", "description": "Real-time state streams of a Cosmos node (stream module): connections, subscriptions, delivery, latency, lag, refusals.",
    "tags": ["cosmos", "stream"], "timezone": "browser", "editable": True, "graphTooltip": 1, "refresh": "10s",
    "schemaVersion": 39, "version": 1, "time": {"from": "now-1h", "to": "now"},
    "templating": {"list": [{"name": "job", "label": "job", "type": "query", "datasource": DS, "query": {"query": "label_values(stream_connections, job)", "refId": "job"}, "definition": "label_values(stream_connections, job)", "includeAll": True, "multi": True, "current": {"text": "All", "value": "$__all"}, "refresh": 2, "allValue": ".*"}]},
    "annotations": {"list": []}, "links": [], "panels": panels,
}
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "stream-dashboard.json"), "w") as f:
    json.dump(dash, f, indent=2)
    f.write("\n")
print(f"{len(panels)} panels")
