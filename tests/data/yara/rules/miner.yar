/*
  Test rule for `imageaudit scan --yara`: it describes a class of file by its content, the
  way public rule sets do, and the scenarios plant a file of that class.
*/

rule miner_stratum_config : miner
{
    meta:
        description = "Cryptocurrency miner: stratum pool URL beside a miner option"
        reference = "https://attack.mitre.org/techniques/T1496/"
    strings:
        $pool = /stratum\+(tcp|ssl):\/\/[a-z0-9.\-]{1,64}:[0-9]{2,5}/ ascii nocase
        $opt1 = "--donate-level" ascii
        $opt2 = "\"donate-level\"" ascii
        $opt3 = "randomx" ascii nocase
    condition:
        $pool and any of ($opt*)
}
