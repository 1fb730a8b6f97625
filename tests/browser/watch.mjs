// Opens a page in the system Chromium, headless, and samples what it plays.
//
//   node watch.mjs URL SECONDS
//
// Every 500 ms it prints one JSON line: `{"t": ms since load, "stats": window.rtmpxStats()}` (the
// built-in page's report: decoded frames, currentTime, latency, error); the page's console errors and
// failed requests go to stderr. Exits 0 after SECONDS, 2 on a browser or navigation failure.
import puppeteer from "puppeteer-core";

const [url, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || "5");
const executablePath = process.env.RTMPX_CHROMIUM || "/usr/bin/chromium";

if (!url) {
  console.error("usage: node watch.mjs URL SECONDS");
  process.exit(2);
}

const browser = await puppeteer.launch({
  executablePath,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
  ],
});
let status = 0;
try {
  const page = await browser.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") console.error("console:", message.text());
  });
  page.on("pageerror", (error) => console.error("pageerror:", error.message));
  page.on("requestfailed", (request) =>
    console.error("requestfailed:", request.url(), request.failure()?.errorText ?? ""),
  );
  const started = Date.now();
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: 10000 });
  while (Date.now() - started < seconds * 1000) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stats = await page.evaluate(() =>
      typeof window.rtmpxStats === "function" ? window.rtmpxStats() : null,
    );
    console.log(JSON.stringify({ t: Date.now() - started, stats }));
  }
} catch (error) {
  console.error("watch.mjs:", error.message);
  status = 2;
} finally {
  await browser.close();
}
process.exit(status);
