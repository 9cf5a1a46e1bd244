// Shell-style globs (`*`, `?`, `[ab]`) on console names: `cloudcons grep --console`, the web
// viewer's list filter. Dependency-free, so the browser bundle can use it too.
export function globToRegex(glob: string, flags = ''): RegExp {
  const re = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, flags);
}
