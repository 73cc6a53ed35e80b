/**
 * Validation of control-API request bodies. Bodies come from the network, so nothing here asserts:
 * every problem is an `InvalidFieldError` whose `field` names the offending key
 * (`attributes.latency`, `listen`, ...), which the API answers with HTTP 400.
 */
import { UsageError } from '../errors.ts';
import { parseHostPort } from '../units.ts';
import { InvalidFieldError } from './errors.ts';
import { chaosNameLengthMax } from '../limits.ts';
import {
  PARTITION_MODES,
  STREAM_NAMES,
  TOXIC_ATTRIBUTES,
  TOXIC_TYPES,
  type Endpoint,
  type PartitionMode,
  type StreamName,
  type Toxic,
  type ToxicType,
} from './model.ts';

export interface ProxyCreate {
  name: string;
  listen: Endpoint;
  upstream: Endpoint;
  enabled: boolean;
  partition: PartitionMode;
}

/** A change to a proxy; absent fields stay as they are. */
export interface ProxyUpdate {
  listen?: Endpoint;
  upstream?: Endpoint;
  enabled?: boolean;
  partition?: PartitionMode;
}

/** Keys our own GET answers contain that a client may echo back; they are read-only and ignored. */
const READ_ONLY_PROXY_KEYS = ['toxics', 'stats'];

export function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new InvalidFieldError('body', `not valid JSON (${(error as Error).message})`);
  }
}

export function parseName(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.-]+$/.test(value) || value.length > chaosNameLengthMax) {
    throw new InvalidFieldError(
      field,
      `expected a name of 1 to ${chaosNameLengthMax} letters, digits, "_", "-" or ".", got ${show(value)}`,
    );
  }
  return value;
}

export function parseProxyCreate(body: unknown): ProxyCreate {
  const object = asObject(body, 'body');
  checkKeys(object, ['name', 'listen', 'upstream', 'enabled', 'partition'], READ_ONLY_PROXY_KEYS);
  const name = parseName(required(object, 'name'), 'name');
  const listen = parseEndpoint(required(object, 'listen'), 'listen', true);
  const upstream = parseEndpoint(required(object, 'upstream'), 'upstream', false);
  const change = parseEnabledAndPartition(object);
  return { name, listen, upstream, enabled: change.enabled ?? true, partition: change.partition ?? 'cut' };
}

export function parseProxyUpdate(body: unknown, name: string): ProxyUpdate {
  const object = asObject(body, 'body');
  checkKeys(object, ['name', 'listen', 'upstream', 'enabled', 'partition'], READ_ONLY_PROXY_KEYS);
  if (object.name !== undefined && object.name !== name) {
    throw new InvalidFieldError('name', `a proxy cannot be renamed (delete it and create "${show(object.name)}")`);
  }
  const update: ProxyUpdate = parseEnabledAndPartition(object);
  if (object.listen !== undefined) update.listen = parseEndpoint(object.listen, 'listen', true);
  if (object.upstream !== undefined) update.upstream = parseEndpoint(object.upstream, 'upstream', false);
  return update;
}

/** `{enabled:false}` cuts; `{enabled:false, partition:"stall"}` or just `{partition:"stall"}` stalls. */
function parseEnabledAndPartition(object: Record<string, unknown>): { enabled?: boolean; partition?: PartitionMode } {
  const result: { enabled?: boolean; partition?: PartitionMode } = {};
  if (object.enabled !== undefined) {
    if (typeof object.enabled !== 'boolean') throw new InvalidFieldError('enabled', `expected true or false, got ${show(object.enabled)}`);
    result.enabled = object.enabled;
  }
  if (object.partition !== undefined) {
    if (!PARTITION_MODES.includes(object.partition as PartitionMode)) {
      throw new InvalidFieldError('partition', `expected one of ${PARTITION_MODES.join(', ')}, got ${show(object.partition)}`);
    }
    if (result.enabled === true) {
      throw new InvalidFieldError('partition', 'only meaningful with enabled:false (a partition disables the proxy)');
    }
    result.partition = object.partition as PartitionMode;
    result.enabled = false;
  }
  return result;
}

function parseEndpoint(value: unknown, field: string, portZeroAllowed: boolean): Endpoint {
  if (typeof value !== 'string') throw new InvalidFieldError(field, `expected "HOST:PORT", got ${show(value)}`);
  let endpoint: Endpoint;
  try {
    endpoint = parseHostPort(value, field);
  } catch (error) {
    if (error instanceof UsageError)
      throw new InvalidFieldError(field, `expected "HOST:PORT" (for example 127.0.0.1:7000), got ${show(value)}`);
    throw error;
  }
  if (endpoint.port === 0 && !portZeroAllowed) throw new InvalidFieldError(field, 'port 0 is not a destination');
  return endpoint;
}

/** Reads a new toxic. Defaults follow Toxiproxy: stream `downstream`, toxicity 1, name `TYPE_STREAM`. */
export function parseToxicCreate(body: unknown): Toxic {
  const object = asObject(body, 'body');
  checkKeys(object, ['name', 'type', 'stream', 'toxicity', 'attributes'], []);
  const type = parseToxicType(required(object, 'type'));
  let stream: StreamName = 'downstream';
  if (object.stream !== undefined) {
    if (!STREAM_NAMES.includes(object.stream as StreamName)) {
      throw new InvalidFieldError('stream', `expected upstream or downstream, got ${show(object.stream)}`);
    }
    stream = object.stream as StreamName;
  }
  const name = object.name === undefined ? `${type}_${stream}` : parseName(object.name, 'name');
  const toxicity = object.toxicity === undefined ? 1 : parseToxicity(object.toxicity);
  const given = object.attributes === undefined ? {} : parseAttributeValues(type, object.attributes);
  const attributes: Record<string, number> = {};
  for (const [key, schema] of Object.entries(TOXIC_ATTRIBUTES[type])) {
    const value = given[key] ?? schema.default;
    if (value === undefined)
      throw new InvalidFieldError(`attributes.${key}`, `required for a ${type} toxic (${schema.help}, ${schema.unit})`);
    attributes[key] = value;
  }
  checkAttributeRelations(type, attributes);
  return { name, type, stream, toxicity, attributes };
}

/** Reads a change to `existing`; name, type and stream are fixed once a toxic exists. */
export function parseToxicUpdate(body: unknown, existing: Toxic): Toxic {
  const object = asObject(body, 'body');
  checkKeys(object, ['name', 'type', 'stream', 'toxicity', 'attributes'], []);
  for (const key of ['name', 'type', 'stream'] as const) {
    if (object[key] !== undefined && object[key] !== existing[key]) {
      throw new InvalidFieldError(key, `cannot be changed (is ${show(existing[key])}); delete the toxic and add a new one`);
    }
  }
  const toxicity = object.toxicity === undefined ? existing.toxicity : parseToxicity(object.toxicity);
  const given = object.attributes === undefined ? {} : parseAttributeValues(existing.type, object.attributes);
  const attributes = { ...existing.attributes, ...given };
  checkAttributeRelations(existing.type, attributes);
  return { ...existing, toxicity, attributes };
}

function parseToxicType(value: unknown): ToxicType {
  if (!TOXIC_TYPES.includes(value as ToxicType)) {
    throw new InvalidFieldError('type', `unknown toxic type ${show(value)} (known: ${TOXIC_TYPES.join(', ')})`);
  }
  return value as ToxicType;
}

function parseToxicity(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new InvalidFieldError('toxicity', `expected a probability from 0 to 1, got ${show(value)}`);
  }
  return value;
}

function parseAttributeValues(type: ToxicType, value: unknown): Record<string, number> {
  const object = asObject(value, 'attributes');
  const schemas = TOXIC_ATTRIBUTES[type];
  const result: Record<string, number> = {};
  for (const [key, raw] of Object.entries(object)) {
    const schema = schemas[key];
    if (!schema) {
      throw new InvalidFieldError(`attributes.${key}`, `not an attribute of a ${type} toxic (known: ${Object.keys(schemas).join(', ')})`);
    }
    const tooLow = typeof raw === 'number' && (schema.minExclusive ? raw <= schema.min : raw < schema.min);
    if (typeof raw !== 'number' || !Number.isFinite(raw) || tooLow || raw > schema.max || (schema.integer && !Number.isInteger(raw))) {
      const range = `${schema.minExclusive ? '>' : '≥'} ${schema.min} and ≤ ${schema.max}`;
      const unit = schema.unit ? ` ${schema.unit}` : '';
      throw new InvalidFieldError(
        `attributes.${key}`,
        `expected ${schema.integer ? 'a whole number' : 'a number'} ${range}${unit} (${schema.help}), got ${show(raw)}`,
      );
    }
    result[key] = raw;
  }
  return result;
}

function checkAttributeRelations(type: ToxicType, attributes: Record<string, number>): void {
  // Slices must be at least one byte long, whatever the draw.
  const { size_variation: variation, average_size: average } = attributes;
  if (type === 'slicer' && variation !== undefined && average !== undefined && variation >= average) {
    throw new InvalidFieldError('attributes.size_variation', `must be smaller than average_size (${attributes.average_size})`);
  }
}

function asObject(value: unknown, field: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidFieldError(field, `expected a JSON object, got ${show(value)}`);
  }
  return value as Record<string, unknown>;
}

function required(object: Record<string, unknown>, key: string): unknown {
  if (object[key] === undefined) throw new InvalidFieldError(key, 'required');
  return object[key];
}

/** Refuses unknown keys: a misspelt `"latncy"` silently meaning 0 ms would be a nasty surprise. */
function checkKeys(object: Record<string, unknown>, known: string[], ignored: string[]): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key) && !ignored.includes(key)) {
      throw new InvalidFieldError(key, `unknown field (known: ${known.join(', ')})`);
    }
  }
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
