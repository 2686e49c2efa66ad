// The median of a list of numbers (the mean of the middle two for an even count).
export const median = a => {
  const s = [...a].sort((x, y) => x - y), h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
};
