/**
 * One Ajv setup for every schema of the API: unknown fields are errors (no silent removal),
 * nothing is coerced (a number where a string belongs is a 400, not a conversion), and the
 * first error names the field at fault as `<where>.<path>` (`body.type`, `query.limit`).
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsPlugin from 'ajv-formats';
import { createError, type TemError } from '../core/errors.js';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = formatsPlugin as unknown as typeof formatsPlugin.default;

/** Patterns with a name people read instead of the regular expression (see describedPattern). */
const PATTERN_NAMES = new Map<string, string>();

/** Registers how a 400 describes a value that fails `pattern`; returns the pattern. */
export function describedPattern(pattern: string, description: string): string {
  PATTERN_NAMES.set(pattern, description);
  return pattern;
}

export function createAjv(): Ajv {
  const ajv = new Ajv({
    coerceTypes: false,
    removeAdditional: false,
    useDefaults: false,
    allErrors: false,
    strict: true,
  });
  addFormats(ajv, ['date-time']);
  return ajv;
}

/** The field an Ajv error is about, as a dotted path under `where` (`body.events.3.type`). */
export function errorField(where: string, error: ErrorObject | undefined): string {
  if (!error) return where;
  const parts = error.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const params = error.params as { missingProperty?: string; additionalProperty?: string };
  if (error.keyword === 'required' && params.missingProperty) parts.push(params.missingProperty);
  if (error.keyword === 'additionalProperties' && params.additionalProperty) parts.push(params.additionalProperty);
  return [where, ...parts].join('.');
}

/** A readable detail for an Ajv error, naming the field. */
export function errorDetail(field: string, error: ErrorObject | undefined): string {
  if (!error) return `${field} is invalid`;
  switch (error.keyword) {
    case 'required':
      return `${field} is required`;
    case 'additionalProperties':
      return `${field} is not a known field`;
    case 'type':
      return `${field} must be ${(error.params as { type: string }).type}`;
    case 'pattern': {
      const name = PATTERN_NAMES.get((error.params as { pattern: string }).pattern);
      return name ? `${field} must be ${name}` : `${field} ${error.message ?? 'is invalid'}`;
    }
    case 'enum':
      return `${field} must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return `${field} ${error.message ?? 'is invalid'}`;
  }
}

export function validationError(where: string, errors: ErrorObject[] | null | undefined): TemError {
  const first = errors?.[0] ?? undefined;
  const field = errorField(where, first);
  return createError('VALIDATION_FAILED', errorDetail(field, first), { field });
}

/** Runs a compiled validator; throws VALIDATION_FAILED naming the field. */
export function check<T>(validate: ValidateFunction<T>, value: unknown, where: string): asserts value is T {
  if (!validate(value)) throw validationError(where, validate.errors);
}
