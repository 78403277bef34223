/*
  A rule whose condition costs the square of the file size: on a file of a few kilobytes it
  runs for minutes. `scan --yara` must end it at the worker's CPU limit or time-out, as an
  error, never hang and never pass.
*/

rule quadratic_pairs
{
    meta:
        description = "every pair of bytes compared"
    condition:
        for any i in (0..filesize) : ( for any j in (0..filesize) : ( uint8(j) == 7 and uint8(i) == 9 ) )
}
