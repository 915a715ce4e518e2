// node report-shot.mjs REPORT.html OUT_DIR: opens report.html in headless chromium (no
// network: the page must stand alone), screenshots the page and every section, and fails
// unless each section rendered something: a box of real size whose pixels are not all one
// colour. PLAYWRIGHT_DIR: where playwright-core is installed (report-viewer.sh).
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const { chromium } = createRequire(`${process.env.PLAYWRIGHT_DIR}/`)("playwright-core");
const [html, out] = process.argv.slice(2);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const requests = [];
page.on("request", (r) => { if (!r.url().startsWith("file:") && !r.url().startsWith("data:")) requests.push(r.url()); });
await page.goto(pathToFileURL(html).href);
writeFileSync(`${out}/report.png`, await page.screenshot({ fullPage: true }));
const ids = await page.$$eval("header[id], section[id]", (els) => els.map((e) => e.id));
const failures = [];
for (const id of ids) {
  const el = page.locator(`#${id}`);
  const box = await el.boundingBox();
  if (!box || box.width < 50 || box.height < 20) { failures.push(`${id}: no box (${JSON.stringify(box)})`); continue; }
  const png = await el.screenshot();
  writeFileSync(`${out}/${id}.png`, png);
  // Count the colours in the section's own pixels, decoded by the browser itself.
  const colours = await page.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = img.width; c.height = img.height;
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const seen = new Set();
    for (let i = 0; i < d.length && seen.size < 50; i += 16) seen.add(`${d[i]},${d[i + 1]},${d[i + 2]}`);
    return seen.size;
  }, png.toString("base64"));
  if (colours < 3) failures.push(`${id}: ${colours} colour(s): nothing drawn`);
  console.log(`${id}: ${Math.round(box.width)}x${Math.round(box.height)}, ${colours}+ colours`);
}
const bars = await page.$$eval("#timeline svg rect", (rs) => rs.filter((r) => r.getBBox().width > 0).length);
console.log(`timeline: ${bars} bars drawn`);
if (bars === 0) failures.push("timeline: no bar drawn");
if (!ids.includes("timeline") || !ids.includes("verdict")) failures.push(`sections found: ${ids.join(", ")}`);
if (requests.length) failures.push(`the page asked the network: ${requests.join(", ")}`);
await browser.close();
if (failures.length) { console.error(failures.join("\n")); process.exit(1); }
