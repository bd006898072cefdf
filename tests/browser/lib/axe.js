// Accessibility checks with axe-core (WCAG 2.x, levels A and AA): a serious or critical
// violation fails the test, with what and where.
import assert from 'node:assert/strict';
import { AxeBuilder } from '@axe-core/playwright';

const TAGS = ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa'];

/** Runs axe on the page as it is now (`what` names the screen in the failure). */
export async function assertAccessible(page, what) {
  const results = await new AxeBuilder({ page }).withTags(TAGS).analyze();
  const bad = results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help}\n${v.nodes.slice(0, 5)
      .map((n) => `    ${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`).join('\n')}`);
  assert.deepEqual(bad, [], `${what}:\n${bad.join('\n')}`);
}
