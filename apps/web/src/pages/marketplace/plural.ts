import { formatCount } from '../../lib/format';

/**
 * A count and its noun, singular for one.
 * @example plural(1, 'install') // '1 install'
 * @example plural(1200, 'install') // '1,200 installs'
 */
export const plural = (n: number, word: string) => `${formatCount(n)} ${word}${n === 1 ? '' : 's'}`;
