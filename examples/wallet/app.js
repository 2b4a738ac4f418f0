// The wallet page: three subscriptions of the TypeScript client (balances, delegations,
// unbonding delegations of one address), rendered as they change, with one connection
// indicator for the three. Every update is also kept in `window.wallet.log` (what the
// browser test reads to check the page missed nothing). `?transport=sse` streams over
// Server-Sent Events (`/sse/subscribe/...`) instead of the WebSocket `/ws`.

import { SseTransport, StreamClient } from "../../clients/ts/dist/index.js";

const params = new URLSearchParams(location.search);
const sse = params.get("transport") === "sse";
const host = location.hostname || "127.0.0.1";
const endpoint = params.get("endpoint") ?? (sse ? `http://${host}:1317` : `ws://${host}:1317`);
const address = params.get("address") ?? "juno1ccwqzcnvkdvxp7yql57gyxyy853vz4s36rn0am";

const $ = (id) => document.getElementById(id);
const wallet = { log: [], states: {} };
window.wallet = wallet;
$("address").textContent = address;

const client = new StreamClient({
  endpoints: [endpoint],
  ...(sse ? { transport: new SseTransport() } : {}),
});

function row(cells, test) {
  const tr = document.createElement("tr");
  if (test) tr.dataset.test = test;
  for (const [text, cls] of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
  }
  return tr;
}

function fill(tbody, rows, columns) {
  if (rows.length === 0) {
    const empty = row([["none", "empty"]]);
    empty.firstChild.colSpan = columns;
    rows = [empty];
  }
  tbody.replaceChildren(...rows);
}

const shortValoper = (v) => `${v.slice(0, 16)}…${v.slice(-6)}`;
const shares = (s) => s.replace(/\.?0+$/, "");

const render = {
  balances(coins) {
    fill(
      $("balances"),
      coins.map((c) => row([[c.denom], [c.amount, "num"]], `balance-${c.denom}`)),
      2,
    );
  },
  delegations(list) {
    fill(
      $("delegations"),
      list.map((d) =>
        row(
          [
            [shortValoper(d.delegation.validator_address)],
            [shares(d.delegation.shares), "num"],
            [`${d.balance.amount} ${d.balance.denom}`, "num"],
          ],
          `delegation-${d.delegation.validator_address}`,
        ),
      ),
      3,
    );
  },
  unbonding(list) {
    const rows = [];
    for (const u of list) {
      for (const e of u.entries) {
        rows.push(
          row(
            [
              [shortValoper(u.validator_address)],
              [String(e.creation_height), "num"],
              [new Date(e.completion_time).toLocaleTimeString()],
              [e.balance, "num"],
            ],
            `unbonding-${u.validator_address}-${e.creation_height}`,
          ),
        );
      }
    }
    fill($("unbonding"), rows, 4);
  },
};

// One indicator for the three streams: the worst of their states.
function showState() {
  const states = Object.values(wallet.states);
  const el = $("state");
  const failed = states.find((s) => s.status === "failed");
  const reconnecting = states.filter((s) => s.status === "reconnecting");
  let status;
  let text;
  if (failed) {
    [status, text] = ["failed", `failed: ${failed.reason}`];
  } else if (reconnecting.length > 0) {
    const attempt = Math.max(...reconnecting.map((s) => s.attempt));
    [status, text] = ["reconnecting", `reconnecting (attempt ${attempt})`];
  } else if (states.length === 3 && states.every((s) => s.status === "live")) {
    [status, text] = ["live", "live"];
  } else {
    [status, text] = ["connecting", "connecting"];
  }
  el.className = `state ${status}`;
  el.textContent = text;
  el.dataset.status = status;
}

let latest = 0;
function logUpdate(name, u) {
  wallet.log.push({ stream: name, height: u.height, kind: u.kind, lastHeight: u.lastHeight });
  latest = Math.max(latest, u.height);
  $("height").textContent = String(latest);
  const note = u.kind === "resynced" ? ` (resynced after ${u.lastHeight}: changes in between were not available)` : u.kind === "snapshot" ? " (snapshot)" : "";
  const line = `height ${u.height}  ${name}${note}\n`;
  const log = $("log");
  log.textContent = (line + log.textContent).split("\n").slice(0, 40).join("\n");
}

async function follow(name, subscription, draw) {
  wallet.states[name] = subscription.state;
  subscription.onStateChange((s) => {
    wallet.states[name] = s;
    showState();
  });
  showState();
  try {
    for await (const u of subscription) {
      draw(u.value);
      logUpdate(name, u);
    }
  } catch (e) {
    wallet.states[name] = { status: "failed", reason: String(e.message ?? e) };
    showState();
  }
}

follow("balances", client.balances(address), render.balances);
follow("delegations", client.delegations(address), render.delegations);
follow("unbonding", client.unbondingDelegations(address), render.unbonding);
