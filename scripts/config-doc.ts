/**
 * Renders docs/configuration.md from the settings table in src/config/schema.ts, so the
 * operator's documentation cannot drift from the code. `npx tsx scripts/config-doc.ts --write`.
 */
import { writeFileSync } from 'node:fs';
import { SETTINGS, TIMER_MAX_MS } from '../src/config/schema.js';

export function renderConfigDoc(): string {
  const rows = Object.entries(SETTINGS).map(([name, spec]) => {
    const def = spec.default === undefined ? '—' : `\`${String(spec.default)}\``;
    // A start-up refuses a value outside these bounds, so the table gives every one of them
    // (a minimum of 0 only where a maximum is shown too: a negative count or delay says itself).
    const min = 'min' in spec && typeof spec.min === 'number' ? spec.min : undefined;
    const range =
      'values' in spec
        ? ` (${spec.values.join(', ')})`
        : 'max' in spec && spec.max === TIMER_MAX_MS
          ? min
            ? ` From ${min} to 2147483647 (about 24.8 days).`
            : ' At most 2147483647 (about 24.8 days).'
          : 'max' in spec && min !== undefined
            ? ` From ${min} to ${spec.max}.`
            : min
              ? ` At least ${min}.`
              : '';
    return `| \`${spec.env}\` | \`${name}\` | ${def} | ${spec.doc}${range} |`;
  });
  return `# Configuration

Every setting has a default. Each value is taken from, in order: the environment, then the JSON
file named by \`TEM_CONFIG\` (default \`./tem.config.json\`, optional), then the default. A bad value
stops start-up with a message naming the setting, and so does a file named in \`TEM_CONFIG\` that
does not exist (an empty \`TEM_CONFIG\` means no file). An empty environment variable counts as unset. A \`TEM_\` variable that names no setting is ignored, and a server process logs a warning naming it (with the setting it most likely meant), since a misspelt one would otherwise leave its setting at the default unnoticed.
A server role that cannot reach its database at start stops with exit code 1 and a message naming
\`DATABASE_URL\` (its password hidden) and the cause: \`tem: DATABASE_URL=postgres://app:***@db/tem:
the database is not reachable (connect ECONNREFUSED …)\`.

| environment | config file key | default | meaning |
|---|---|---|---|
${rows.join('\n')}

## Config file only

\`namespaces\`: options per channel namespace (the part before the first \`:\`), \`*\` for the rest.
Unless configured: history as \`TEM_HISTORY_SIZE\` / \`TEM_HISTORY_TTL_MS\`, \`presence\` on,
\`joinLeave\` (presence.join/leave/update events) off, \`clientPublish\` (PUBLISH frames) off; the
\`user\` namespace has neither presence nor client publishing. The file's \`*\` entry is what every
other namespace takes its unset options from, wherever it stands in the file; \`user\` takes only
its history options from it, and its \`presence\`, \`joinLeave\` and \`clientPublish\` stay off
unless its own entry sets them.
As everywhere, the environment wins over the file: \`TEM_HISTORY_SIZE\` / \`TEM_HISTORY_TTL_MS\`,
when set, replace the \`*\` entry's history options; a named namespace's own values still apply.

\`\`\`json
{
  "namespaces": {
    "*":    { "historySize": 100, "historyTtlMs": 300000, "presence": true, "joinLeave": false, "clientPublish": false },
    "live": { "historySize": 500, "joinLeave": true, "clientPublish": true },
    "user": { "historySize": 100, "presence": false, "joinLeave": false }
  }
}
\`\`\`

\`retry\`: retry policy per event type, exact or \`prefix.*\` (the longest prefix wins), \`*\` for the rest:

\`\`\`json
{ "retry": { "payment.*": { "maxAttempts": 10, "baseMs": 500, "maxMs": 60000 } } }
\`\`\`

Attempt *n* (1-based) that fails is retried after a random delay between 0 and
min(maxMs, baseMs · 2^(n−1)) ("full jitter"); after \`maxAttempts\` the event is \`failed\`.
The \`*\` policy is the file's \`*\` entry over the \`TEM_RETRY_*\` defaults, with \`TEM_RETRY_*\`
variables set in the environment winning over both; every other entry takes what it leaves out
from that \`*\` policy. A key that is not \`*\`, an event type or \`prefix.*\` stops start-up, and so
does a value outside the bounds of its \`TEM_RETRY_*\` setting (\`maxAttempts\` 1–1000, delays up to
30 days).

Who reads what: an event's \`maxAttempts\` is fixed when it is accepted, by the API process that
accepts it (shown as \`max_attempts\`), so a change applies to new events; retrying a failed
event gives it the budget its type has then. \`baseMs\` and \`maxMs\` are read by the worker
when an attempt fails. Give every process the same file.

## The CLI's admin commands

They read the settings above (\`TEM_DATA_DIR\`, \`TEM_HTTP_HOST\`, \`TEM_HTTP_PORT\`,
\`TEM_ADMIN_KEY\`) to find a local server and its key, and two of their own:

| environment | option | meaning |
|---|---|---|
| \`TEM_URL\` | \`--url\` | the server to talk to (default: the embedded server on \`TEM_DATA_DIR\`, from its \`server.json\`, else the host and port these settings describe) |
| \`TEM_API_KEY\` | \`--key\` | the API key to use (default: \`TEM_ADMIN_KEY\`, else \`$TEM_DATA_DIR/admin.key\`) |
`;
}

if (process.argv.includes('--write')) {
  writeFileSync(new URL('../docs/configuration.md', import.meta.url), renderConfigDoc());
}
