import { request } from 'node:http';
import { HotpatchError } from '../errors.js';

/**
 * A client of a control endpoint (`unix:<path>`, a socket path, or `http://127.0.0.1:<port>`):
 * one request, answered within `timeout` ms (default 60 000).
 * @throws HotpatchError with the endpoint's error code, E_IO when it cannot be reached, E_TIMEOUT
 */
export async function endpointRequest(endpoint: string, method: 'GET' | 'POST', path: string, options: { body?: Uint8Array; token?: string; timeout?: number } = {}): Promise<unknown> {
  const socketPath = endpoint.startsWith('unix:') ? endpoint.slice(5) : endpoint.startsWith('http') ? undefined : endpoint;
  const url = socketPath ? undefined : new URL(path, endpoint);
  const timeout = options.timeout ?? 60_000;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        method,
        ...(socketPath ? { socketPath, path } : { hostname: url!.hostname, port: url!.port, path: url!.pathname }),
        headers: {
          ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
          ...(options.body ? { 'content-type': 'application/wasm', 'content-length': options.body.length } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let value: { error?: { code: string; message: string; problems?: [] } } | undefined;
          try {
            value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            return reject(new HotpatchError('E_IO', `the endpoint answered ${res.statusCode} with no JSON`));
          }
          if ((res.statusCode ?? 500) >= 400) {
            const e = value?.error;
            return reject(new HotpatchError((e?.code as never) ?? 'E_IO', e?.message ?? `status ${res.statusCode}`, { problems: e?.problems ?? [] }));
          }
          resolve(value);
        });
      },
    );
    req.setTimeout(timeout, () => req.destroy(new HotpatchError('E_TIMEOUT', `no answer from ${endpoint} within ${timeout} ms`)));
    req.on('error', (cause) => reject(cause instanceof HotpatchError ? cause : new HotpatchError('E_IO', `cannot reach ${endpoint}: ${cause.message}`, { cause })));
    req.end(options.body);
  });
}
