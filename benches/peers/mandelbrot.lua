-- mandelbrot: float-heavy escape-time loop on an N x N grid.
local function main()
  local n = 1000
  local max_iter = 50
  local inside = 0
  local iters = 0
  for y = 0, n - 1 do
    local ci = 2.0 * y / n - 1.0
    for x = 0, n - 1 do
      local cr = 2.0 * x / n - 1.5
      local zr = 0.0
      local zi = 0.0
      local escaped = false
      local i = 0
      while i < max_iter do
        local nzr = zr * zr - zi * zi + cr
        zi = 2.0 * zr * zi + ci
        zr = nzr
        i = i + 1
        if zr * zr + zi * zi > 4.0 then
          escaped = true
          break
        end
      end
      iters = iters + i
      if not escaped then inside = inside + 1 end
    end
  end
  print(string.format("%d", inside))
  print(string.format("%d", iters))
end
main()
