/**
 * Principals and their keys (contract §3, administration). Any change that can narrow what a
 * caller may do (disable, role or permission change, key revocation) invalidates the auth
 * cache here at once and, through the store, in every other process.
 */
import type { FastifyRequest } from 'fastify';
import { ADMIN_PRINCIPAL_ID } from '../../auth/bootstrap.js';
import { generateApiKey } from '../../auth/keys.js';
import { effectivePermissions, PERMISSION_RE, resolveGrants } from '../../auth/policy.js';
import { createError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { PrincipalKind } from '../../core/types.js';
import { PRINCIPAL_ID_PATTERN } from '../event-input.js';
import { describedPattern } from '../ajv.js';
import { parseDateTime } from '../payload-check.js';
import { refuseBody } from '../no-body.js';
import { requireHeld } from '../grants.js';
import { LIMIT_PATTERN, parseLimit } from './events-read.js';
import { keyJson, principalJson } from '../serialize.js';
import type { ApiRoutePlugin } from '../types.js';

export const ROLE_NAME_PATTERN = describedPattern('^[a-z0-9][a-z0-9_-]{0,63}$', 'a role name: 1–64 of a-z, 0-9, "_" and "-", starting with a letter or digit');
export const permissionListSchema = {
  type: 'array',
  maxItems: 1000,
  items: { type: 'string', maxLength: 255, pattern: describedPattern(PERMISSION_RE.source, 'a permission: <app>.<method>.<view>, each segment a name or "*" (app and method of a-z, 0-9, "_" and "-"; the view may also hold A-Z); or fewer segments ending in "*" (events.get.event_list, events.*, *)') },
} as const;

const principalIdParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', pattern: PRINCIPAL_ID_PATTERN } },
} as const;

const createSchema = {
  type: 'object',
  required: ['kind'],
  additionalProperties: false,
  properties: {
    id: { type: 'string', pattern: PRINCIPAL_ID_PATTERN },
    kind: { type: 'string', enum: ['service', 'user'] },
    role: { type: 'string', pattern: ROLE_NAME_PATTERN },
    extra_permissions: permissionListSchema,
    revoked_permissions: permissionListSchema,
  },
} as const;

const patchSchema = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: {
    role: { type: 'string', pattern: ROLE_NAME_PATTERN },
    extra_permissions: permissionListSchema,
    revoked_permissions: permissionListSchema,
    disabled: { type: 'boolean' },
  },
} as const;

const keyCreateSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { expires_at: { type: ['string', 'null'], format: 'date-time' } },
} as const;

/** Query values are strings, as on GET /api/events; `cursor` is the last id of the previous page. */
const listQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    kind: { type: 'string', enum: ['service', 'user'] },
    role: { type: 'string', pattern: ROLE_NAME_PATTERN },
    cursor: { type: 'string', pattern: PRINCIPAL_ID_PATTERN },
    limit: { type: 'string', pattern: LIMIT_PATTERN },
  },
} as const;

/** Default page size: every principal of a small deployment in one answer. */
const PRINCIPAL_PAGE = 100;

interface ListQuery {
  kind?: PrincipalKind;
  role?: string;
  cursor?: string;
  limit?: string;
}

interface CreateBody {
  id?: string;
  kind: PrincipalKind;
  role?: string;
  extra_permissions?: string[];
  revoked_permissions?: string[];
}
interface PatchBody {
  role?: string;
  extra_permissions?: string[];
  revoked_permissions?: string[];
  disabled?: boolean;
}
type IdParams = { Params: { id: string } };

export const adminPrincipalRoutes: ApiRoutePlugin = async (app, { store, authenticator, clock }) => {
  /** The role's policy; a role that does not exist is a bad field. */
  const requireRole = async (name: string, field: string): Promise<string[]> => {
    const role = await store.getRole(name);
    if (!role) throw createError('VALIDATION_FAILED', `No role named ${name}`, { field });
    return role.permissions;
  };

  app.post(
    '/api/admin/principals',
    { config: { permission: 'admin.post.principal_create' }, schema: { body: createSchema } },
    async (request: FastifyRequest<{ Body: CreateBody }>, reply) => {
      const b = request.body;
      // The built-in role named like the kind unless another is given; the id is generated
      // unless chosen (contract §1).
      const role = b.role ?? b.kind;
      requireHeld(request, await requireRole(role, 'body.role'), 'body.role', `The role ${role}`);
      requireHeld(request, b.extra_permissions ?? [], 'body.extra_permissions', 'Granting these');
      const id = b.id ?? newId(b.kind === 'user' ? 'u' : 'svc');
      if (await store.getPrincipal(id)) throw createError('CONFLICT', `Principal ${id} already exists`, { field: 'body.id' });
      const principal = await store.createPrincipal({
        id,
        kind: b.kind,
        role,
        extraPermissions: b.extra_permissions ?? [],
        revokedPermissions: b.revoked_permissions ?? [],
      });
      reply.code(201).header('location', `/api/admin/principals/${encodeURIComponent(id)}`);
      return principalJson(principal);
    },
  );

  app.get(
    '/api/admin/principals',
    { config: { permission: 'admin.get.principal_list' }, schema: { querystring: listQuerySchema } },
    async (request: FastifyRequest<{ Querystring: ListQuery }>) => {
      const q = request.query;
      const page = await store.listPrincipals({ kind: q.kind, role: q.role, cursor: q.cursor, limit: parseLimit(q.limit, PRINCIPAL_PAGE) });
      return { data: page.principals.map(principalJson), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/api/admin/principals/:id',
    { config: { permission: 'admin.get.principal_detail' }, schema: { params: principalIdParams } },
    async (request: FastifyRequest<IdParams>) => {
      const principal = await store.getPrincipal(request.params.id);
      if (!principal) throw createError('NOT_FOUND', `No principal ${request.params.id}`);
      return principalJson(principal);
    },
  );

  /**
   * Principal `admin` holds every admin key (TEM_ADMIN_KEY, admin.key): it is how a deployment is
   * administered at all. Disabled, given a role without `*` or any revocation, it could lock every
   * key out of the API that would undo it, so it stays whole, as the `admin` role keeps `*`.
   * Its keys can still be revoked: a new TEM_ADMIN_KEY (or a deleted admin.key) makes a new one.
   */
  function keepAdminWhole(b: PatchBody, newRole: string[] | undefined): void {
    const refuse = (field: string, what: string): never => {
      throw createError('INVALID_STATE', `Principal ${ADMIN_PRINCIPAL_ID} keeps every permission; ${what}. Revoke its keys instead, or give narrower permissions to another principal`, { field });
    };
    if (b.disabled === true) refuse('body.disabled', 'it cannot be disabled');
    if (b.revoked_permissions && b.revoked_permissions.length > 0) refuse('body.revoked_permissions', 'nothing can be revoked from it');
    if (newRole !== undefined && !newRole.includes('*')) refuse('body.role', `the role ${b.role} does not hold "*"`);
  }

  app.patch(
    '/api/admin/principals/:id',
    { config: { permission: 'admin.patch.principal_update' }, schema: { params: principalIdParams, body: patchSchema } },
    async (request: FastifyRequest<IdParams & { Body: PatchBody }>) => {
      const b = request.body;
      const current = await store.getPrincipal(request.params.id);
      if (!current) throw createError('NOT_FOUND', `No principal ${request.params.id}`);
      // Only what the change adds: a new role, new extra permissions, lifted revocations.
      const newRole = b.role === undefined ? undefined : await requireRole(b.role, 'body.role');
      if (newRole !== undefined && b.role !== current.role) requireHeld(request, newRole, 'body.role', `The role ${b.role}`);
      if (current.id === ADMIN_PRINCIPAL_ID) keepAdminWhole(b, newRole);
      if (b.extra_permissions) requireHeld(request, b.extra_permissions.filter((p) => !current.extraPermissions.includes(p)), 'body.extra_permissions', 'Granting these');
      if (b.revoked_permissions) {
        const lifted = current.revokedPermissions.filter((p) => !b.revoked_permissions!.includes(p));
        requireHeld(request, lifted, 'body.revoked_permissions', 'Lifting these revocations');
      }
      // Enabling a disabled principal gives its keys back everything it may do, as minting a
      // key for it would: the caller must hold all of it (as the principal will be after the change).
      if (b.disabled === false && current.disabled) {
        const policy = newRole ?? (await store.getRole(current.role))?.permissions ?? [];
        const grants = effectivePermissions({
          permissions: resolveGrants(policy, b.extra_permissions ?? current.extraPermissions),
          revoked: b.revoked_permissions ?? current.revokedPermissions,
        });
        requireHeld(request, grants, 'body.disabled', `Enabling ${current.id}`);
      }
      const principal = await store.updatePrincipal(request.params.id, {
        role: b.role,
        extraPermissions: b.extra_permissions,
        revokedPermissions: b.revoked_permissions,
        disabled: b.disabled,
      });
      if (!principal) throw createError('NOT_FOUND', `No principal ${request.params.id}`);
      await authenticator.changed({ principalId: principal.id });
      return principalJson(principal);
    },
  );

  app.post<IdParams & { Body: { expires_at?: string | null } }>(
    '/api/admin/principals/:id/keys',
    {
      config: { permission: 'admin.post.key_create' },
      schema: { params: principalIdParams, body: keyCreateSchema },
      // Every field is optional, so no body at all means {}.
      preValidation: async (request) => {
        if (request.body === undefined) request.body = {};
      },
    },
    async (request, reply) => {
      const principal = await store.getPrincipal(request.params.id);
      if (!principal) throw createError('NOT_FOUND', `No principal ${request.params.id}`);
      // A key acts as its principal: minting one hands on everything the principal may do.
      const role = await store.getRole(principal.role);
      const grants = effectivePermissions({ permissions: resolveGrants(role?.permissions ?? [], principal.extraPermissions), revoked: principal.revokedPermissions });
      requireHeld(request, grants, 'params.id', `A key for ${principal.id}`);
      const raw = request.body.expires_at ?? null;
      // A time already past makes a key that is expired from the start (refused with 401), as
      // an operator scripting expiry or a test of expired keys would want.
      const expiresAt = raw === null ? null : parseDateTime(raw, 'body.expires_at');
      const generated = generateApiKey();
      const record = await store.createApiKey({
        id: newId('key'),
        principalId: principal.id,
        hash: generated.hash,
        prefix: generated.prefix,
        expiresAt,
      });
      reply.code(201);
      return { ...keyJson(record), key: generated.key };
    },
  );

  app.get(
    '/api/admin/principals/:id/keys',
    { config: { permission: 'admin.get.key_list' }, schema: { params: principalIdParams } },
    async (request: FastifyRequest<IdParams>) => {
      if (!(await store.getPrincipal(request.params.id))) throw createError('NOT_FOUND', `No principal ${request.params.id}`);
      const keys = await store.listApiKeys(request.params.id);
      return { data: keys.map(keyJson) };
    },
  );

  app.delete(
    '/api/admin/keys/:key_id',
    {
      config: { permission: 'admin.delete.key_revoke' },
      preValidation: refuseBody('a revocation'),
      schema: {
        params: {
          type: 'object',
          required: ['key_id'],
          additionalProperties: false,
          properties: { key_id: { type: 'string', pattern: describedPattern('^[A-Za-z0-9_-]{1,128}$', 'a key id: 1–128 of A-Z, a-z, 0-9, "_" and "-" (key_…)') } },
        },
      },
    },
    async (request: FastifyRequest<{ Params: { key_id: string } }>) => {
      const record = await store.revokeApiKey(request.params.key_id, clock.now());
      if (!record) throw createError('NOT_FOUND', `No key ${request.params.key_id}`);
      await authenticator.changed({ keyId: record.id, principalId: record.principalId });
      return keyJson(record);
    },
  );
};
