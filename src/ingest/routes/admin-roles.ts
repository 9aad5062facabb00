/** Roles and their JSON policies: GET /api/admin/roles, GET/PUT /api/admin/roles/{name}. */
import type { FastifyRequest } from 'fastify';
import { createError } from '../../core/errors.js';
import { requireHeld } from '../grants.js';
import { roleJson } from '../serialize.js';
import type { ApiRoutePlugin } from '../types.js';
import { permissionListSchema, ROLE_NAME_PATTERN } from './admin-principals.js';

const nameParams = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', pattern: ROLE_NAME_PATTERN } },
} as const;

const putSchema = {
  type: 'object',
  required: ['permissions'],
  additionalProperties: false,
  properties: { permissions: permissionListSchema },
} as const;

type NameParams = { Params: { name: string } };

const ADMIN_ROLE = 'admin';

export const adminRoleRoutes: ApiRoutePlugin = async (app, { store, authenticator }) => {
  app.get('/api/admin/roles', { config: { permission: 'admin.get.role_list' } }, async () => {
    const roles = await store.listRoles();
    return { data: roles.map(roleJson) };
  });

  app.get(
    '/api/admin/roles/:name',
    { config: { permission: 'admin.get.role_detail' }, schema: { params: nameParams } },
    async (request: FastifyRequest<NameParams>) => {
      const role = await store.getRole(request.params.name);
      if (!role) throw createError('NOT_FOUND', `No role ${request.params.name}`);
      return roleJson(role);
    },
  );

  app.put(
    '/api/admin/roles/:name',
    { config: { permission: 'admin.put.role_update' }, schema: { params: nameParams, body: putSchema } },
    async (request: FastifyRequest<NameParams & { Body: { permissions: string[] } }>, reply) => {
      // The admin role is how a deployment is administered at all (TEM_ADMIN_KEY, admin.key):
      // without `*` every admin key, this caller's included, would be locked out of the API
      // that could give it back.
      if (request.params.name === ADMIN_ROLE && !request.body.permissions.includes('*')) {
        throw createError('INVALID_STATE', `The built-in ${ADMIN_ROLE} role always holds "*"; give narrower permissions through another role`, { field: 'body.permissions' });
      }
      // Only what the change adds to the role: its other permissions are the role's already.
      const before = (await store.getRole(request.params.name))?.permissions ?? [];
      requireHeld(request, request.body.permissions.filter((p) => !before.includes(p)), 'body.permissions', `Adding these to ${request.params.name}`);
      const { role, created } = await store.putRole(request.params.name, [...new Set(request.body.permissions)]);
      // Every principal of this role may have gained or lost permissions.
      await authenticator.changed({ roles: true });
      // PUT creating the resource answers 201, replacing it 200 (RFC 9110 §9.3.4).
      return reply.code(created ? 201 : 200).send(roleJson(role));
    },
  );
};
