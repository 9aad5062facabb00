/**
 * End-user JWTs minted by an application's own backend (contract §1): HS256 with
 * TEM_JWT_SECRET or RS256 with TEM_JWT_PUBLIC_KEY. Verification is jose's; `exp` and `sub` are
 * required, `iss`/`aud` are checked when configured.
 */
import { createHash, createPublicKey } from 'node:crypto';
import { errors, importSPKI, jwtVerify, type JWTVerifyOptions } from 'jose';
import { publicKeyPem, type TemConfig } from '../config/index.js';
import type { Clock } from '../core/clock.js';
import { createError } from '../core/errors.js';
import { PRINCIPAL_ID_RE } from '../core/ids.js';
import type { AuthContext } from './types.js';

export interface VerifiedJwt {
  sub: string;
  channels: string[];
  expiresAt: Date;
}

export type JwtVerifier = (token: string) => Promise<VerifiedJwt>;

/** Three base64url parts separated by dots. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function looksLikeJwt(token: string): boolean {
  return token.length < 16_384 && JWT_SHAPE.test(token);
}

/**
 * The AuthContext of a verified JWT: the user `sub`, with the `user` role's permissions (read
 * from the store by whoever holds it) and the token's `channels` claim.
 */
export function jwtContext(claims: VerifiedJwt, userRolePermissions: string[]): AuthContext {
  return {
    principalId: claims.sub,
    kind: 'user',
    userId: claims.sub,
    role: 'user',
    permissions: userRolePermissions,
    revoked: [],
    channels: claims.channels,
    keyId: null,
    expiresAt: claims.expiresAt,
    via: 'jwt',
  };
}

type JwtSettings = Pick<TemConfig, 'jwtSecret' | 'jwtPublicKey' | 'jwtIssuer' | 'jwtAudience'>;

/**
 * A digest of everything that decides whether a JWT is accepted (algorithm, key, issuer,
 * audience), or null without JWT settings. The API sends it with a JWT's introspection answer so
 * a gateway verifying JWTs itself can tell its settings differ from the API's (and then stop).
 */
export function jwtSettingsDigest(config: JwtSettings): string | null {
  if (!config.jwtSecret && !config.jwtPublicKey) return null;
  const key = config.jwtSecret ? ['HS256', config.jwtSecret] : ['RS256', publicKeyPem(config.jwtPublicKey!).trim()];
  return createHash('sha256')
    .update(JSON.stringify([...key, config.jwtIssuer ?? null, config.jwtAudience ?? null]))
    .digest('base64url');
}

/** Returns null when no JWT secret or public key is configured. */
export function createJwtVerifier(
  config: JwtSettings,
  clock: Clock,
): JwtVerifier | null {
  let keyPromise: Promise<CryptoKey>;
  let algorithm: 'HS256' | 'RS256';
  if (config.jwtSecret) {
    algorithm = 'HS256';
    // Imported once: given the raw bytes, jose imports a key on every verification, which was
    // most of the cost of a JWT handshake.
    keyPromise = crypto.subtle.importKey('raw', new TextEncoder().encode(config.jwtSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  } else if (config.jwtPublicKey) {
    algorithm = 'RS256';
    // As SPKI whatever PEM it came in: jose imports only that form, and PKCS#1
    // ("BEGIN RSA PUBLIC KEY", what `openssl rsa -RSAPublicKey_out` writes) is common too.
    const spki = createPublicKey(publicKeyPem(config.jwtPublicKey)).export({ type: 'spki', format: 'pem' }) as string;
    keyPromise = importSPKI(spki, 'RS256');
  } else {
    return null;
  }
  // Surface a bad PEM on first use as UNAUTHORIZED rather than an unhandled rejection now.
  keyPromise.catch(() => undefined);

  return async (token: string): Promise<VerifiedJwt> => {
    const options: JWTVerifyOptions = {
      algorithms: [algorithm],
      requiredClaims: ['exp', 'sub'],
      currentDate: clock.now(),
    };
    if (config.jwtIssuer) options.issuer = config.jwtIssuer;
    if (config.jwtAudience) options.audience = config.jwtAudience;
    let payload;
    try {
      ({ payload } = await jwtVerify(token, await keyPromise, options));
    } catch (err) {
      throw createError('UNAUTHORIZED', rejection(err));
    }
    const { sub, exp } = payload;
    if (typeof sub !== 'string' || !PRINCIPAL_ID_RE.test(sub) || typeof exp !== 'number') {
      throw createError('UNAUTHORIZED', 'Token has no valid sub or exp claim (sub: 1–128 of A-Z, a-z, 0-9, "_", ".", "@", "=" and "-")');
    }
    // An exp past the dates a Date can hold (about 275,000 years out) would make an invalid
    // expiry that fails later, where it is written out (introspection answered 500).
    if (!Number.isFinite(new Date(exp * 1000).getTime())) {
      throw createError('UNAUTHORIZED', 'Token exp claim is beyond any representable date');
    }
    const rawChannels = (payload as { channels?: unknown }).channels;
    let channels: string[] = [];
    if (rawChannels !== undefined) {
      if (!Array.isArray(rawChannels) || !rawChannels.every((c) => typeof c === 'string')) {
        throw createError('UNAUTHORIZED', 'Token claim channels must be an array of strings');
      }
      channels = rawChannels as string[];
    }
    return { sub, channels, expiresAt: new Date(exp * 1000) };
  };
}

/**
 * Why jose refused a token, for the 401's detail. jose checks the claims only once the
 * signature holds, so naming the claim tells nothing to someone without the key; a signature
 * or format failure stays unspecific.
 */
function rejection(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'Token has expired (exp)';
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `Token has no ${err.claim} claim`;
    if (err.claim === 'nbf') return 'Token is not valid yet (nbf)';
    return `Token ${err.claim} claim is not accepted`;
  }
  return 'Invalid token: malformed, or not signed with the configured key and algorithm';
}
