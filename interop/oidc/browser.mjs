// Driving sign-in and consent pages in Debian's Chromium with playwright-core (never a
// downloaded browser). Both providers' pages use the names API.md fixes: inputs
// `username`/`password` with one submit button, then `button[name=decision][value=allow]`.
// oidc-provider's own RP-initiated logout confirmation (`button[name=logout]`) is
// recognised too, since jwtauth may show none.
import { chromium } from 'playwright-core';

const CHROMIUM_ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
  });
}

function sameTarget(url, target) {
  // Loopback redirect URIs may vary the port (RFC 8252 section 7.3): match without it.
  return url.protocol === target.protocol && url.hostname === target.hostname
    && url.pathname === target.pathname;
}

const FORMS = 'input[name="password"], button[name="decision"][value="allow"], '
  + 'button[name="logout"][value="yes"]';

// Open `url` and act as the user until the browser is sent to `target` (a URL whose
// requests are answered here, never sent). Returns the URL it arrived at and the pages
// seen on the way ("signin", "consent", "logout").
export async function visit(context, url, target, user, { decision = 'allow' } = {}) {
  const page = await context.newPage();
  const goal = new URL(target);
  let arrived;
  const done = new Promise((resolve) => { arrived = resolve; });
  await page.route((u) => sameTarget(u, goal), (route) => {
    arrived(route.request().url());
    return route.fulfill({ status: 200, contentType: 'text/html', body: '<p>back at the client</p>' });
  });
  const pages = [];
  try {
    let navigated = page.goto(String(url), { waitUntil: 'domcontentloaded' }).catch(() => {});
    for (let step = 0; step < 6; step += 1) {
      const next = await Promise.race([
        done.then((href) => ({ href })),
        navigated.then(() => page.waitForSelector(FORMS, { timeout: 10000 }))
          .then(() => ({ form: true }), () => ({ stuck: true })),
      ]);
      if (next.href) return { url: next.href, pages };
      if (next.stuck) {
        const text = (await page.textContent('body').catch(() => '')) || '';
        return { url: null, pages, status: 'stuck', page: page.url(), text: text.slice(0, 500) };
      }
      const wait = () => page.waitForNavigation({ waitUntil: 'domcontentloaded', timeout: 10000 })
        .catch(() => {});
      if (await page.$('input[name="password"]')) {
        pages.push('signin');
        await page.fill('input[name="username"]', user.username);
        await page.fill('input[name="password"]', user.password);
        navigated = wait();
        await page.click('form:has(input[name="password"]) [type="submit"]');
      } else if (await page.$('button[name="decision"]')) {
        pages.push('consent');
        navigated = wait();
        await page.click(`button[name="decision"][value="${decision}"]`);
      } else {
        pages.push('logout');
        navigated = wait();
        await page.click('button[name="logout"][value="yes"]');
      }
    }
    return { url: null, pages, status: 'too many pages' };
  } finally {
    await page.close();
  }
}
