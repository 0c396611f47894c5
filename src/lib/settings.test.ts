import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, normalizeSettings, serverUrlProblem } from './settings';

describe('settings', () => {
  it('fall back to defaults field by field for missing or invalid stored values', () => {
    expect(normalizeSettings(undefined)).toEqual(DEFAULT_SETTINGS);
    expect(normalizeSettings('garbage')).toEqual(DEFAULT_SETTINGS);
    const s = normalizeSettings({ policy: 'local-only', thresholds: { scope: 0.8, mcConfidence: 7, freeConfidence: NaN }, serverUrl: ' http://x:1/v1 ', apiKey: 42 });
    expect(s.policy).toBe('local-only');
    expect(s.thresholds).toEqual({ scope: 0.8, mcConfidence: DEFAULT_SETTINGS.thresholds.mcConfidence, freeConfidence: DEFAULT_SETTINGS.thresholds.freeConfidence });
    expect(s.serverUrl).toBe('http://x:1/v1');
    expect(s.apiKey).toBe('');
    expect(normalizeSettings({ policy: 'everywhere' }).policy).toBe(DEFAULT_SETTINGS.policy);
  });

  it('send no earlier turns unless the user chose to, whatever was stored', () => {
    expect(DEFAULT_SETTINGS.sendHistory).toBe('none');
    expect(normalizeSettings({ sendHistory: 'shared' }).sendHistory).toBe('shared');
    for (const v of ['all', null, 1, {}]) expect(normalizeSettings({ sendHistory: v }).sendHistory).toBe('none');
  });

  it('explain what is wrong with a server URL', () => {
    expect(serverUrlProblem('')).toBeNull();
    expect(serverUrlProblem('https://api.example.com/v1')).toBeNull();
    expect(serverUrlProblem('not a url')).toMatch(/not a URL/);
    expect(serverUrlProblem('ftp://x/')).toMatch(/http/);
    expect(serverUrlProblem('https://user:secret@x/v1')).toMatch(/API key/);
  });
});
