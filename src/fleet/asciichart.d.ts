// Types for the parts of asciichart (plain JS, no bundled types) the report uses.
declare module 'asciichart' {
  export function plot(series: readonly number[] | readonly (readonly number[])[], config?: { height?: number; min?: number; max?: number; offset?: number; padding?: string; format?: (x: number) => string; colors?: readonly string[] }): string;
  export const green: string;
  export const red: string;
  export const yellow: string;
  export const blue: string;
  export const lightgray: string;
  export const darkgray: string;
}
