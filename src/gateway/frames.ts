/**
 * Parsing and validation of client frames (contract §4). Pure: a raw message in, either a typed
 * frame or a protocol error out. Nothing here closes a connection — bad input gets an ERROR frame
 * and the connection stays open; only oversize frames close (1009, enforced by ws maxPayload).
 */
import {
  CLIENT_FRAME_TYPES,
  EVENT_NAME_DESCRIPTION,
  EVENT_NAME_RE,
  PRESENCE_STATUSES,
  isValidChannel,
  RESERVED_EVENT_NAMES,
  type ClientFrame,
  type ClientFrameMap,
  type ClientFrameType,
  type StreamPosition,
  type WsErrorCode,
} from '../protocol/index.js';
import { forbiddenKeyMessage, forbiddenKeyPath, mayHoldForbiddenKey } from '../core/forbidden-keys.js';

export type ParseResult =
  | { ok: true; frame: ClientFrame }
  | { ok: false; code: WsErrorCode; message: string; ref?: string | number };

/** Most channels one SUBSCRIBE/UNSUBSCRIBE may name; more is almost surely abuse. */
export const MAX_CHANNELS_PER_FRAME = 100;
/**
 * Most positions a HELLO may carry: a resuming client names every channel it holds (up to the
 * per-connection subscription limit, 512, and its own), not one frame's worth. The frame size
 * limit bounds it too; entries for channels the session does not hold are ignored.
 */
export const MAX_SINCE_PER_HELLO = 1024;
const MAX_TOKEN = 8192;
const MAX_ID = 128;

type Check<T> = { ok: true; value: T } | { ok: false; message: string };

const fail = (message: string): { ok: false; message: string } => ({ ok: false, message });

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(obj: Record<string, unknown>, allowed: readonly string[]): string | null {
  for (const key of Object.keys(obj)) if (!allowed.includes(key)) return key;
  return null;
}

function channelField(v: unknown, field: string): Check<string> {
  if (typeof v !== 'string') return fail(`${field} must be a string`);
  if (!isValidChannel(v)) return fail(`${field} is not a valid channel name`);
  return { ok: true, value: v };
}

function channelList(v: unknown): Check<string[]> {
  if (!Array.isArray(v) || v.length === 0) return fail('payload.channels must be a non-empty array');
  if (v.length > MAX_CHANNELS_PER_FRAME) return fail(`payload.channels holds at most ${MAX_CHANNELS_PER_FRAME} channels`);
  const out: string[] = [];
  for (const [i, c] of v.entries()) {
    const r = channelField(c, `payload.channels[${i}]`);
    if (!r.ok) return r;
    if (!out.includes(r.value)) out.push(r.value);
  }
  return { ok: true, value: out };
}

function sinceMap(v: unknown, max: number): Check<Record<string, StreamPosition> | undefined> {
  if (v === undefined || v === null) return { ok: true, value: undefined };
  if (!isObject(v)) return fail('payload.since must be an object of {channel: {offset, epoch}}');
  const entries = Object.entries(v);
  if (entries.length > max) return fail(`payload.since holds at most ${max} channels`);
  const out: Record<string, StreamPosition> = {};
  for (const [ch, pos] of entries) {
    if (!isValidChannel(ch)) return fail(`payload.since: ${JSON.stringify(ch.slice(0, 64))} is not a valid channel name`);
    if (!isObject(pos)) return fail(`payload.since.${ch} must be {offset, epoch}`);
    const { offset, epoch } = pos;
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) return fail(`payload.since.${ch}.offset must be a non-negative integer`);
    if (typeof epoch !== 'string' || epoch.length > 64) return fail(`payload.since.${ch}.epoch must be a string`);
    out[ch] = { offset, epoch };
  }
  return { ok: true, value: out };
}

type Validator<T extends ClientFrameType> = (p: Record<string, unknown>) => Check<ClientFrameMap[T]>;

const validators: { [T in ClientFrameType]: Validator<T> } = {
  HELLO(p) {
    const extra = unknownKeys(p, ['token', 'session_id', 'since']);
    if (extra) return fail(`payload.${extra} is not allowed`);
    if (p.token !== undefined && (typeof p.token !== 'string' || p.token.length === 0 || p.token.length > MAX_TOKEN)) return fail('payload.token must be a non-empty string');
    if (p.session_id !== undefined && (typeof p.session_id !== 'string' || p.session_id.length === 0 || p.session_id.length > 128)) return fail('payload.session_id must be a string');
    const since = sinceMap(p.since, MAX_SINCE_PER_HELLO);
    if (!since.ok) return since;
    return { ok: true, value: { token: p.token as string | undefined, session_id: p.session_id as string | undefined, since: since.value } };
  },
  SUBSCRIBE(p) {
    const extra = unknownKeys(p, ['channels', 'since']);
    if (extra) return fail(`payload.${extra} is not allowed`);
    const channels = channelList(p.channels);
    if (!channels.ok) return channels;
    const since = sinceMap(p.since, MAX_CHANNELS_PER_FRAME);
    if (!since.ok) return since;
    // A position for a channel this frame does not subscribe to would be dropped unread: a
    // client that meant it (a typo, a list built apart from its positions) is told.
    const stray = Object.keys(since.value ?? {}).find((ch) => !channels.value.includes(ch));
    if (stray !== undefined) return fail(`payload.since.${stray} names a channel that payload.channels does not`);
    return { ok: true, value: { channels: channels.value, since: since.value } };
  },
  UNSUBSCRIBE(p) {
    const extra = unknownKeys(p, ['channels']);
    if (extra) return fail(`payload.${extra} is not allowed`);
    const channels = channelList(p.channels);
    if (!channels.ok) return channels;
    return { ok: true, value: { channels: channels.value } };
  },
  PING() {
    return { ok: true, value: undefined };
  },
  PUBLISH(p) {
    const extra = unknownKeys(p, ['channel', 'event', 'payload']);
    if (extra) return fail(`payload.${extra} is not allowed`);
    const channel = channelField(p.channel, 'payload.channel');
    if (!channel.ok) return channel;
    if (channel.value.endsWith(':*')) return fail('payload.channel cannot be a pattern');
    if (typeof p.event !== 'string' || !EVENT_NAME_RE.test(p.event)) return fail(`payload.event must be ${EVENT_NAME_DESCRIPTION}`);
    if (RESERVED_EVENT_NAMES.test(p.event)) return fail(`payload.event ${p.event} is reserved`);
    if (p.payload === undefined) return fail('payload.payload is required');
    return { ok: true, value: { channel: channel.value, event: p.event, payload: p.payload } };
  },
  INGEST(p) {
    // Full validation is the ingest path's (same rules as POST /api/events); only the shape here.
    if (typeof p.type !== 'string') return fail('payload.type must be a string');
    if (!isObject(p.payload)) return fail('payload.payload must be an object');
    return { ok: true, value: p as unknown as ClientFrameMap['INGEST'] };
  },
  TYPING_START(p) {
    return typingPayload(p);
  },
  TYPING_STOP(p) {
    return typingPayload(p);
  },
  SET_PRESENCE(p) {
    const extra = unknownKeys(p, ['status']);
    if (extra) return fail(`payload.${extra} is not allowed`);
    if (typeof p.status !== 'string' || !(PRESENCE_STATUSES as readonly string[]).includes(p.status)) return fail('payload.status must be online, idle or dnd');
    return { ok: true, value: { status: p.status as ClientFrameMap['SET_PRESENCE']['status'] } };
  },
  PRESENCE(p) {
    const extra = unknownKeys(p, ['channel']);
    if (extra) return fail(`payload.${extra} is not allowed`);
    const channel = channelField(p.channel, 'payload.channel');
    if (!channel.ok) return channel;
    if (channel.value.endsWith(':*')) return fail('payload.channel cannot be a pattern');
    return { ok: true, value: { channel: channel.value } };
  },
};

function typingPayload(p: Record<string, unknown>): Check<{ channel: string }> {
  const extra = unknownKeys(p, ['channel']);
  if (extra) return fail(`payload.${extra} is not allowed`);
  const channel = channelField(p.channel, 'payload.channel');
  if (!channel.ok) return channel;
  if (channel.value.endsWith(':*')) return fail('payload.channel cannot be a pattern');
  return { ok: true, value: { channel: channel.value } };
}

/** Parses one WebSocket message. Binary messages are refused: the protocol is JSON text. */
export function parseClientFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): ParseResult {
  if (isBinary) return { ok: false, code: 'BAD_REQUEST', message: 'binary frames are not supported; send JSON text' };
  const text = Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, code: 'BAD_REQUEST', message: 'frame is not valid JSON' };
  }
  if (!isObject(raw)) return { ok: false, code: 'BAD_REQUEST', message: 'frame must be a JSON object {type, id?, payload?}' };
  // The keys HTTP refuses too (the same INGEST must not pass here and fail there).
  const poisoned = mayHoldForbiddenKey(text) ? forbiddenKeyPath(raw, 'frame') : null;
  const id = raw.id;
  let ref: string | number | undefined;
  if (id !== undefined && id !== null) {
    if ((typeof id === 'string' && id.length <= MAX_ID) || (typeof id === 'number' && Number.isFinite(id))) ref = id;
    else return { ok: false, code: 'BAD_REQUEST', message: `id must be a string (≤ ${MAX_ID} chars) or a number` };
  }
  const bad = (code: WsErrorCode, message: string): ParseResult => (ref === undefined ? { ok: false, code, message } : { ok: false, code, message, ref });
  if (poisoned) return bad('BAD_REQUEST', forbiddenKeyMessage(poisoned.replace(/^frame\./, '')));
  const extra = unknownKeys(raw, ['type', 'id', 'payload']);
  if (extra) return bad('BAD_REQUEST', `${extra.slice(0, 64)} is not allowed in a frame`);
  if (typeof raw.type !== 'string') return bad('BAD_REQUEST', 'type must be a string');
  const type = raw.type;
  if (!(CLIENT_FRAME_TYPES as readonly string[]).includes(type)) return bad('UNKNOWN_TYPE', `unknown frame type ${JSON.stringify(type.slice(0, 64))}`);
  const payload = raw.payload ?? {};
  if (!isObject(payload)) return bad('BAD_REQUEST', 'payload must be an object');
  const checked = (validators[type as ClientFrameType] as Validator<ClientFrameType>)(payload);
  if (!checked.ok) return bad('BAD_REQUEST', checked.message);
  const frame: ClientFrame = { type: type as ClientFrameType, payload: checked.value };
  if (ref !== undefined) frame.id = ref;
  return { ok: true, frame };
}
