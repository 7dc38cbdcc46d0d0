import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Playground, startPlayground } from '../src/playground/server.js';

// Debian's chromium (`apt-get install -y chromium`, which .ci/run does when it is missing).
const CHROMIUM = '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) process.stderr.write(`playground-browser: skipped, ${CHROMIUM} is missing (apt-get install -y chromium)\n`);

/** Requests the guest serves between two reads of its counters: ~4000 exploit attempts (one in 200). */
const TRAFFIC = 800_000;
const WAIT = { timeout: 30_000 };
/** A name for 127.0.0.1 that is not localhost: a page served under it is not a secure context. */
const INSECURE = 'playground.test';

let playground: Playground;
let context: BrowserContext;
let page: Page;
let userDataDir: string;
const pageErrors: string[] = [];

const value = async (id: string): Promise<number> => Number(await page.getAttribute(`#${id}`, 'data-value'));
const logged = (type: string, extra = '') => page.locator(`#log li[data-type="${type}"]${extra}`);

/** Waits (bounded) until the guest has served `count` more requests than `from`. */
async function trafficAfter(from: number, count = TRAFFIC): Promise<void> {
  await page.waitForFunction((target) => Number(document.getElementById('served')!.dataset.value) >= target, from + count, WAIT);
}

/** Drops bytes on the drop zone as a dragged file would arrive. */
async function drop(name: string, bytes: Uint8Array): Promise<void> {
  const transfer = await page.evaluateHandle(
    ({ name, data }) => {
      const t = new DataTransfer();
      t.items.add(new File([new Uint8Array(data)], name, { type: 'application/wasm' }));
      return t;
    },
    { name, data: Array.from(bytes) },
  );
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: transfer });
}

async function download(path: string): Promise<Uint8Array> {
  return new Uint8Array(await (await fetch(new URL(path, playground.url))).arrayBuffer());
}

describe.skipIf(!hasChromium)('the browser playground in headless Chromium', () => {
  beforeAll(async () => {
    playground = await startPlayground({ names: [INSECURE] });
    userDataDir = mkdtempSync(join(tmpdir(), 'playground-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        `--host-resolver-rules=MAP ${INSECURE} 127.0.0.1`,
      ],
      viewport: { width: 1200, height: 900 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await page.goto(playground.url);
  });

  afterAll(async () => {
    await context?.close();
    await playground?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('loads: the service runs in a worker and the exploit works', async () => {
    await page.waitForFunction(() => Number(document.getElementById('escalations')!.dataset.value) > 0, undefined, WAIT);
    expect(await page.getAttribute('#state', 'data-state')).toBe('vulnerable');
    expect(await page.textContent('#key-id')).toBe(playground.keyId);
    expect(await page.textContent('#bank')).toBe('yes');
  });

  it('Apply stops the exploits, with the commit time the engine recorded', async () => {
    await page.click('#apply');
    const applied = logged('applied', '[data-patch="fix-name-overflow"]');
    await applied.waitFor(WAIT);
    // A commit under one step of the browser's coarse clock reads 0: the page says so rather than "0 µs".
    expect(await applied.textContent()).toMatch(/commit (< )?\d+(\.\d+)? (µs|ms)( \(one clock step\))?/);
    const atCommit = Number(await applied.getAttribute('data-escalations'));
    await trafficAfter(Number(await applied.getAttribute('data-served')));
    expect(await value('escalations')).toBe(atCommit);
    expect(await page.getAttribute('#state', 'data-state')).toBe('patched');
  });

  it('Revert brings the exploits back', async () => {
    await page.click('#revert');
    const reverted = logged('reverted');
    await reverted.waitFor(WAIT);
    const atCommit = Number(await reverted.getAttribute('data-escalations'));
    await trafficAfter(Number(await reverted.getAttribute('data-served')));
    expect(await value('escalations')).toBeGreaterThan(atCommit);
    expect(await page.getAttribute('#state', 'data-state')).toBe('vulnerable');
  });

  it('refuses a tampered patch and an unsigned one, and nothing changes', async () => {
    const signed = await download('/patches/fix-name-overflow.signed.wasm');
    const tampered = signed.slice();
    tampered[signed.length >> 1]! ^= 0x20;
    await drop('tampered.wasm', tampered);
    await logged('rejected', '[data-code~="E_BAD_SIGNATURE"]').waitFor(WAIT);
    await page.setInputFiles('#file', { name: 'unsigned.wasm', mimeType: 'application/wasm', buffer: Buffer.from(await download('/patches/fix-name-overflow.unsigned.wasm')) });
    await logged('rejected', '[data-code~="E_UNSIGNED"]').waitFor(WAIT);
    await drop('offered-tampered.wasm', await download('/patches/fix-name-overflow.tampered.wasm'));
    await expect.poll(() => logged('rejected', '[data-code~="E_BAD_SIGNATURE"]').count(), WAIT).toBe(2);
    const before = await value('escalations');
    await trafficAfter(await value('served'));
    expect(await value('escalations')).toBeGreaterThan(before);
    expect(await page.getAttribute('#state', 'data-state')).toBe('vulnerable');
  });

  it('applies a signed patch dropped on the page', async () => {
    await drop('fix-name-overflow-c.signed.wasm', await download('/patches/fix-name-overflow-c.signed.wasm'));
    const applied = logged('applied', '[data-patch="fix-name-overflow-c"]');
    await applied.waitFor(WAIT);
    const atCommit = Number(await applied.getAttribute('data-escalations'));
    await trafficAfter(Number(await applied.getAttribute('data-served')));
    expect(await value('escalations')).toBe(atCommit);
    // README's picture: PLAYGROUND_SCREENSHOT=src/playground/screenshot.png npx vitest run … test/playground-browser.test.ts
    if (process.env.PLAYGROUND_SCREENSHOT) await page.screenshot({ path: process.env.PLAYGROUND_SCREENSHOT, fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it("outside a secure context, shows the engine's typed error instead of failing obscurely", async () => {
    const insecure = await context.newPage();
    try {
      const port = new URL(playground.url).port;
      await insecure.goto(`http://${INSECURE}:${port}/`);
      expect(await insecure.evaluate(() => window.isSecureContext)).toBe(false);
      const fatal = insecure.locator('#fatal[data-code="E_NO_WEBCRYPTO"]');
      await fatal.waitFor(WAIT);
      expect(await fatal.textContent()).toMatch(/^E_NO_WEBCRYPTO: WebCrypto \(crypto\.subtle\) is not available.*secure context/);
    } finally {
      await insecure.close();
    }
  });
});
