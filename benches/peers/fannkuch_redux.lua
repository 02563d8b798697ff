-- fannkuch_redux: permutation generation and prefix reversal on small arrays.
local function fannkuch(n)
  local perm, perm1, count = {}, {}, {}
  for i = 0, n - 1 do
    perm[i] = 0
    perm1[i] = i
    count[i] = 0
  end
  local max_flips = 0
  local checksum = 0
  local perm_count = 0
  local r = n
  while true do
    while r ~= 1 do
      count[r - 1] = r
      r = r - 1
    end
    for i = 0, n - 1 do perm[i] = perm1[i] end
    local flips = 0
    local k = perm[0]
    while k ~= 0 do
      local i = 0
      local j = k
      while i < j do
        local t = perm[i]
        perm[i] = perm[j]
        perm[j] = t
        i = i + 1
        j = j - 1
      end
      flips = flips + 1
      k = perm[0]
    end
    if flips > max_flips then max_flips = flips end
    if perm_count % 2 == 0 then
      checksum = checksum + flips
    else
      checksum = checksum - flips
    end
    -- next permutation
    while true do
      if r == n then
        return checksum, max_flips
      end
      local perm0 = perm1[0]
      for i = 0, r - 1 do perm1[i] = perm1[i + 1] end
      perm1[r] = perm0
      count[r] = count[r] - 1
      if count[r] > 0 then break end
      r = r + 1
    end
    perm_count = perm_count + 1
  end
end

local function main()
  local n = 9
  local reps = 3
  local checksum, max_flips = 0, 0
  for r = 1, reps do
    checksum, max_flips = fannkuch(n)
  end
  print(string.format("%d", checksum))
  print(string.format("Pfannkuchen(%d) = %d", n, max_flips))
end
main()
