// The demo page in a real browser: Debian's Chromium driven by Playwright
// (playwright-core), against the real gateway binary on a loopback port.
//
//   cd tests/browser && npm ci && node --test
//
// FRAMEGATE_BIN names the binary (default: target/debug/framegate).
// Screenshots go to tests/artifacts/browser/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.FRAMEGATE_BIN || join(ROOT, 'target', 'debug', 'framegate');
const ARTIFACTS = join(ROOT, 'tests', 'artifacts', 'browser');
const BUCKET = 'demo-1250000000';
const CLOSED = 'closed-1250000000';
const SECRET_ID = 'AKIDbrowsertest';
const SECRET_KEY = 'browsertestsecret';
const VIDEOS = { 'demo.mp4': 'demo.mp4', 'clip.mp4': 'h264_bframes.mp4', 'portrait.mp4': 'rotate90.mp4' };

let gateway, port, workdir, config, browser;

function presign(key, { method = 'GET', params = {}, bucket = BUCKET, host = '127.0.0.1' } = {}) {
  const args = ['--config', config, 'presign', key, '--method', method, '--bucket', bucket,
    '--endpoint', `http://${host}:${port}`, '--expires', '600'];
  for (const [k, v] of Object.entries(params)) args.push('--param', `${k}=${v}`);
  return execFileSync(BIN, args, { encoding: 'utf8' }).trim();
}

/** The displayed size of a fixture (rotation applied), from ffprobe. */
function displayedSize(file) {
  const out = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-select_streams', 'v:0',
    '-show_streams', '-of', 'json', join(ROOT, 'fixtures', file)], { encoding: 'utf8' }));
  const s = out.streams[0];
  const matrix = (s.side_data_list || []).find((d) => d.rotation !== undefined);
  const turned = matrix && Math.abs(matrix.rotation) % 180 === 90;
  return turned ? [s.height, s.width] : [s.width, s.height];
}

function parseVtt(text) {
  const seconds = (t) => t.split(':').reduce((acc, x) => acc * 60 + Number(x), 0);
  return text.trim().split(/\n\n+/).slice(1).map((block) => {
    const [times, target] = block.trim().split('\n');
    const [start, end] = times.split(' --> ').map(seconds);
    const [url, rect] = target.split('#xywh=');
    const [x, y, w, h] = rect.split(',').map(Number);
    return { start, end, url, x, y, w, h };
  });
}

async function until(what, check, timeoutMs = 60000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  workdir = mkdtempSync(join(tmpdir(), 'framegate-browser-'));
  config = join(workdir, 'framegate.toml');
  writeFileSync(config, `listen = "127.0.0.1:0"
data_dir = "${join(workdir, 'data')}"
default_bucket = "${BUCKET}"
[demo]
enabled = true
assets_dir = "${join(ROOT, 'web', 'node_modules')}"
[jobs]
workers = 1
[[buckets]]
name = "${BUCKET}"
[[buckets.cors]]
allowed_origins = ["http://localhost:*"]
allowed_methods = ["GET", "HEAD"]
allowed_headers = ["*"]
expose_headers = ["ETag", "x-cos-request-id", "x-framegate-frame-time"]
max_age_secs = 600
[[buckets]]
name = "${CLOSED}"
[[credentials]]
secret_id = "${SECRET_ID}"
secret_key = "${SECRET_KEY}"
`);
  gateway = spawn(BIN, ['serve', '--config', config, '--demo', join(ROOT, 'fixtures', 'demo.mp4')],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  gateway.stderr.on('data', (d) => writeFileSync(join(ARTIFACTS, 'gateway.log'), d, { flag: 'a' }));
  port = await new Promise((resolvePort, reject) => {
    let out = '';
    gateway.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolvePort(Number(m[1]));
    });
    gateway.on('exit', (code) => reject(new Error(`gateway exited ${code}`)));
  });
  for (const [key, file] of Object.entries(VIDEOS)) {
    if (key === 'demo.mp4') continue;
    const put = await fetch(presign(key, { method: 'PUT' }), {
      method: 'PUT', body: readFileSync(join(ROOT, 'fixtures', file)),
    });
    assert.equal(put.status, 200, `upload of ${key}`);
  }
  const closedPut = await fetch(presign('demo.mp4', { method: 'PUT', bucket: CLOSED }), {
    method: 'PUT', body: readFileSync(join(ROOT, 'fixtures', 'demo.mp4')),
  });
  assert.equal(closedPut.status, 200);
  // The demo's preview sprites come from a background job.
  await until('the preview sprite job', async () =>
    (await fetch(`http://127.0.0.1:${port}/.framegate/demo/previews.vtt?v=demo.mp4`)).ok);
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  gateway?.kill('SIGTERM');
  if (workdir) rmSync(workdir, { recursive: true, force: true });
});

async function openDemo(query = '') {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1100 } });
  // The page's own origin is localhost; bucket URLs in tests use 127.0.0.1.
  await page.goto(`http://localhost:${port}/.framegate/demo/${query}`);
  await page.waitForFunction(() => [...document.images].every((i) => i.complete));
  return page;
}

test('every thumbnail loads at the requested width and the displayed aspect ratio', async () => {
  const page = await openDemo();
  const thumbs = await page.$$eval('img.thumb', (imgs) => imgs.map((i) => ({
    key: i.dataset.key, w: i.naturalWidth, h: i.naturalHeight, src: i.src,
  })));
  assert.deepEqual(thumbs.map((t) => t.key).sort(), Object.keys(VIDEOS).sort());
  for (const t of thumbs) {
    const [dw, dh] = displayedSize(VIDEOS[t.key]);
    assert.equal(t.w, 320, `${t.key} width`);
    assert.ok(Math.abs(t.h - Math.round((320 * dh) / dw)) <= 1, `${t.key} height ${t.h}`);
    assert.match(t.src, /q-sign-algorithm=sha1/);
    assert.match(t.src, /ci-process=snapshot/);
  }
  await page.screenshot({ path: join(ARTIFACTS, 'thumbnails.png'), fullPage: true });
  await page.close();
});

test('a thumbnail with a tampered signature fails to load', async () => {
  const page = await openDemo();
  const result = await page.evaluate(async () => {
    const good = document.querySelector('img.thumb').src;
    const bad = good.replace(/q-signature=([0-9a-f])/, (m, c) => `q-signature=${c === '0' ? '1' : '0'}`);
    const img = new Image();
    const outcome = await new Promise((res) => {
      img.onload = () => res('loaded');
      img.onerror = () => res('error');
      img.src = bad;
    });
    const status = (await fetch(bad)).status;
    return { outcome, width: img.naturalWidth, status, changed: bad !== good };
  });
  assert.deepEqual(result, { outcome: 'error', width: 0, status: 403, changed: true });
  await page.close();
});

test('an img whose pre-signed GET URL has ci-process appended shows the snapshot', async () => {
  // COS's way: the object URL pre-signed without parameters, then
  // `&ci-process=snapshot&time=2&width=160` appended by the page.
  const url = `${presign('demo.mp4')}&ci-process=snapshot&time=2&width=160`;
  const page = await openDemo();
  const result = await page.evaluate(async (src) => {
    const img = new Image();
    const outcome = await new Promise((res) => {
      img.onload = () => res('loaded');
      img.onerror = () => res('error');
      img.src = src;
    });
    return { outcome, width: img.naturalWidth };
  }, url);
  assert.deepEqual(result, { outcome: 'loaded', width: 160 });
  await page.close();
});

test('the video plays and seeks through a pre-signed URL (range requests)', async () => {
  const page = await openDemo('?v=demo.mp4');
  const result = await page.evaluate(async () => {
    const v = document.querySelector('video');
    v.muted = true;
    await v.play();
    const deadline = Date.now() + 15000;
    while (v.currentTime < 0.3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const played = v.currentTime;
    const seeked = new Promise((r) => v.addEventListener('seeked', r, { once: true }));
    v.currentTime = 7;
    await seeked;
    return { played, at: v.currentTime, duration: v.duration, error: v.error && v.error.code };
  });
  assert.equal(result.error, null);
  assert.ok(result.played >= 0.3, `played to ${result.played}`);
  assert.ok(Math.abs(result.at - 7) < 0.5, `seeked to ${result.at}`);
  assert.ok(Math.abs(result.duration - 10) < 0.2);
  await page.close();
});

test('hovering the progress bar shows the sprite cell of that time', async () => {
  const page = await openDemo('?v=demo.mp4');
  const vtt = parseVtt(await (await fetch(
    `http://127.0.0.1:${port}/.framegate/demo/previews.vtt?v=demo.mp4`)).text());
  assert.equal(vtt.length, 10);
  await page.waitForFunction(() => window.player && window.player.duration > 0
    && window.player.previewThumbnails && window.player.previewThumbnails.loaded);
  const seek = page.locator('.plyr__progress input[type=range]');
  await seek.scrollIntoViewIfNeeded();
  const bar = await seek.boundingBox();
  for (const seconds of [1.5, 4.5, 8.5]) {
    const x = bar.x + (bar.width * seconds) / 10;
    const cue = vtt.find((c) => c.start <= seconds && seconds < c.end);
    let jiggle = 0;
    const shown = await until(`the preview at ${seconds}s`, async () => {
      jiggle = 1 - jiggle; // a fresh mousemove each try
      await page.mouse.move(x + jiggle, bar.y + bar.height / 2);
      return page.evaluate((want) => {
      const img = [...document.querySelectorAll('.plyr__preview-thumb__image-container img')]
        .find((i) => i.complete && new URL(i.src).pathname === want && i.style.left);
      if (!img) return null;
      const scale = parseFloat(img.style.height) / img.naturalHeight;
      return {
        x: Math.round(-parseFloat(img.style.left) / scale) || 0,
        y: Math.round(-parseFloat(img.style.top) / scale) || 0,
        visible: document.querySelector('.plyr__preview-thumb')
          .classList.contains('plyr__preview-thumb--is-shown'),
      };
    }, new URL(cue.url).pathname);
    }, 10000).catch(async (err) => {
      const html = await page.evaluate(() => document.querySelector('.plyr__progress')?.outerHTML);
      throw new Error(`${err.message}; expected ${cue.url}; progress bar: ${html}`);
    });
    assert.deepEqual({ x: shown.x, y: shown.y }, { x: cue.x, y: cue.y }, `cell at ${seconds}s`);
    assert.ok(shown.visible);
    if (seconds === 4.5) {
      await page.waitForTimeout(500); // the preview fades in
      await page.screenshot({ path: join(ARTIFACTS, 'demo.png'), fullPage: true });
    }
  }
  await page.close();
});

test('cross-origin fetch of a snapshot works where CORS allows it and fails where not', async () => {
  const page = await openDemo();
  const allowed = presign('demo.mp4', { params: { 'ci-process': 'snapshot', time: '2', width: '200' } });
  const missing = presign('missing.mp4', { params: { 'ci-process': 'snapshot', time: '2' } });
  const closed = presign('demo.mp4', { bucket: CLOSED, params: { 'ci-process': 'snapshot', time: '2' } });
  const result = await page.evaluate(async ({ allowed, missing, closed }) => {
    const out = { origin: location.origin };
    const ok = await fetch(allowed);
    const bitmap = await createImageBitmap(await ok.blob());
    out.ok = { status: ok.status, width: bitmap.width, frameTime: ok.headers.get('x-framegate-frame-time') };
    const err = await fetch(missing);
    out.missing = { status: err.status, body: await err.text() };
    try {
      await fetch(closed);
      out.closed = 'read';
    } catch (e) {
      out.closed = e.name;
    }
    return out;
  }, { allowed, missing, closed });
  assert.match(result.origin, /^http:\/\/localhost:/);
  assert.ok(allowed.startsWith('http://127.0.0.1:'), 'the snapshot is on another origin');
  assert.equal(result.ok.status, 200);
  assert.equal(result.ok.width, 200);
  assert.ok(Number(result.ok.frameTime) <= 2, 'an exposed header is readable');
  assert.equal(result.missing.status, 404);
  assert.match(result.missing.body, /<Code>NoSuchKey<\/Code>/);
  assert.equal(result.closed, 'TypeError');
  await page.close();
});

test('preflight requests are answered from the bucket rules', async () => {
  const ask = (origin, method, headers) => fetch(`http://127.0.0.1:${port}/${BUCKET}/demo.mp4`, {
    method: 'OPTIONS',
    headers: { Origin: origin, 'Access-Control-Request-Method': method,
      ...(headers ? { 'Access-Control-Request-Headers': headers } : {}) },
  });
  const ok = await ask('http://localhost:3000', 'GET', 'range, x-cos-meta-a');
  assert.equal(ok.status, 200);
  assert.equal(ok.headers.get('access-control-allow-origin'), 'http://localhost:3000');
  assert.equal(ok.headers.get('access-control-max-age'), '600');
  assert.match(ok.headers.get('access-control-allow-headers'), /range/);
  assert.equal((await ask('http://evil.example', 'GET')).status, 403);
  assert.equal((await ask('http://localhost:3000', 'PUT')).status, 403);
});
